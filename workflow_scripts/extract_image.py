"""Snakemake adapter: rule extract_image."""

from pathlib import Path

from clipsae.runtime.logs import job_log
from clipsae.steps.extract import extract

w = snakemake.wildcards
# The batch size and the workers change no output, so they come from the config, not params.
model = {**snakemake.params.model, "batch_size": snakemake.config["models"][w.model]["batch_size"]}
workers = snakemake.config["extraction"]["num_workers"]
with job_log(snakemake.log[0]):
    extract(
        model,
        snakemake.input.weights or None,
        w.dataset,
        snakemake.params.dataset,
        Path(snakemake.input.index).parent,
        w.split,
        w.layer,
        Path(snakemake.output[0]),
        {**snakemake.params.extraction, "num_workers": workers},
        snakemake.config["device"],
    )
