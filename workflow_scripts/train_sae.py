"""Snakemake adapter: rule train_sae."""

from pathlib import Path

from clipsae import steps
from clipsae.logs import job_log

w = snakemake.wildcards
with job_log(snakemake.log[0]):
    steps.train(
        snakemake.params.entry,
        Path(snakemake.input.train),
        Path(snakemake.input.val),
        Path(snakemake.output.cfg).parent,
        extra={"model": w.model, "layer": w.layer, "dataset": w.dataset, "sae": w.sae},
        device=snakemake.params.device,
    )
