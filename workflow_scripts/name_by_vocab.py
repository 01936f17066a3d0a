"""Snakemake adapter: rule name_by_vocab."""

from pathlib import Path

from clipsae.runtime.logs import job_log
from clipsae.steps.naming import name_by_vocab

with job_log(snakemake.log[0]):
    name_by_vocab(
        sae_dir=Path(snakemake.input.sae[0]).parent,
        vocab_npy=Path(snakemake.input.vocab),
        layer=snakemake.wildcards.layer,
        model=snakemake.params.model,
        weights=snakemake.input.weights or None,
        out_csv=Path(snakemake.output[0]),
        top_n=snakemake.params.top_n,
        center=snakemake.params.center,
    )
