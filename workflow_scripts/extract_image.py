"""Snakemake adapter: rule extract_image."""

from pathlib import Path

from clipsae.runtime.logs import job_log
from clipsae.steps.extract import extract_split

w = snakemake.wildcards
# The batch size and the workers change no output, so they come from the config, not params.
model = {**snakemake.params.model, "batch_size": snakemake.config["models"][w.model]["batch_size"]}
workers = snakemake.config["extraction"]["num_workers"]
with job_log(snakemake.log[0]):
    extract_split(
        model=model,
        weights=snakemake.input.weights or None,
        dataset_name=w.dataset,
        dataset_entry=snakemake.params.dataset,
        index_dir=Path(snakemake.input.index).parent,
        split=w.split,
        layer=w.layer,
        out_dir=Path(snakemake.output[0]),
        extraction={**snakemake.params.extraction, "num_workers": workers},
        device=snakemake.config["device"],
    )
