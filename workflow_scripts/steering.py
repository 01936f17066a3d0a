"""Snakemake adapter: rule steering (each class's ground-truth detector latent, at ``final``)."""

from pathlib import Path

from clipsae.runtime.logs import job_log
from clipsae.steps.steering import class_names_of, detector_targets, run_steering

inputs, factor = snakemake.input, snakemake.params.factor
with job_log(snakemake.log[0]):
    run_steering(
        sae_dir=Path(inputs.sae[0]).parent,
        acts_dir=Path(inputs.acts),
        classes_npy=Path(inputs.classes),
        out_parquet=Path(snakemake.output.table),
        out_json=Path(snakemake.output.summary),
        targets=detector_targets(Path(inputs.truth), factor, class_names_of(Path(inputs.classes))),
        factor=factor,
        other_classes_npy=Path(inputs.other) if inputs.other else None,
        index_dir=Path(inputs.index).parent,
        device=snakemake.config["device"],
    )
