"""Snakemake adapter: rule explore."""

from pathlib import Path

from clipsae.runtime.logs import job_log
from clipsae.steps.explore import ExploreSettings, explore_run

with job_log(snakemake.log[0]):
    explore_run(
        sae_dir=Path(snakemake.input.sae[0]).parent,
        acts_dir=Path(snakemake.input.acts),
        features_dir=Path(snakemake.input.stats).parent,
        names_csv=Path(snakemake.input.names),
        classes_npy=Path(snakemake.input.classes),
        layer=snakemake.wildcards.layer,
        model=snakemake.params.model,
        weights=Path(snakemake.input.weights) if snakemake.input.weights else None,
        dataset_name=snakemake.wildcards.dataset,
        dataset_entry=snakemake.params.dataset,
        index_dir=Path(snakemake.input.index).parent,
        out_dir=Path(snakemake.output.examples).parent,
        settings=ExploreSettings(**snakemake.params.explore),
        device=snakemake.config["device"],
    )
