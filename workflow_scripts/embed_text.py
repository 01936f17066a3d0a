"""Snakemake adapter: rule embed_text (class prompts of a dataset, or the concept vocabulary)."""

from clipsae.runtime.logs import job_log
from clipsae.steps.text import embed_classes, embed_vocab

weights = snakemake.input.weights or None
with job_log(snakemake.log[0]):
    if snakemake.wildcards.name == "vocab":
        embed_vocab(snakemake.params.model, weights, snakemake.input.source, snakemake.output[0])
    else:
        embed_classes(
            snakemake.params.model,
            weights,
            snakemake.input.source,
            snakemake.params.templates,
            snakemake.output[0],
        )
