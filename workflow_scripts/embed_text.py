"""Snakemake adapter: rule embed_text (class prompts of a dataset, or the concept vocabulary)."""

from clipsae import steps
from clipsae.logs import job_log

weights = snakemake.input.weights or None
with job_log(snakemake.log[0]):
    if snakemake.wildcards.name == "vocab":
        steps.embed_vocab(
            snakemake.params.model, weights, snakemake.input.source, snakemake.output[0]
        )
    else:
        steps.embed_classes(
            snakemake.params.model,
            weights,
            snakemake.input.source,
            snakemake.params.templates,
            snakemake.output[0],
        )
