"""Snakemake adapter: rule interpret_vlm (the full ``interpret.vlm`` entry, execution keys too)."""

from pathlib import Path

from clipsae.interpret.vlm import VLMConfig, run_vlm_naming
from clipsae.runtime.logs import job_log

with job_log(snakemake.log[0]):
    run_vlm_naming(
        Path(snakemake.input.collages),
        config=VLMConfig.from_mapping(snakemake.config["interpret"]["vlm"]),
        out_csv=Path(snakemake.output.csv),
        cache_dir=Path(snakemake.config["interpret"]["cache"]),
        summary=Path(snakemake.output.summary),
    )
