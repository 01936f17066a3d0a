"""Snakemake adapter: rule embed_text (class prompts of a dataset, or the concept vocabulary)."""

from clipsae.runtime.logs import job_log
from clipsae.steps.text import embed_classes, embed_vocab

weights = snakemake.input.weights or None
with job_log(snakemake.log[0]):
    if snakemake.wildcards.name == "vocab":
        embed_vocab(
            model=snakemake.params.model,
            weights=weights,
            vocab_tsv=snakemake.input.source,
            out_npy=snakemake.output[0],
            device=snakemake.config["device"],
        )
    else:
        embed_classes(
            model=snakemake.params.model,
            weights=weights,
            classes_json=snakemake.input.source,
            prompts=snakemake.params.prompts,
            out_npy=snakemake.output[0],
            device=snakemake.config["device"],
        )
