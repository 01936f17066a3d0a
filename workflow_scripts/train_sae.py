"""Snakemake adapter: rule train_sae."""

from pathlib import Path

from clipsae.config.matrix import TrainingData
from clipsae.runtime.logs import job_log
from clipsae.steps.train import train

w = snakemake.wildcards
with job_log(snakemake.log[0]):
    train(
        entry=snakemake.params.entry,
        data=TrainingData(**snakemake.params.data),
        train_path=Path(snakemake.input.train),
        val_path=Path(snakemake.input.val),
        out_dir=Path(snakemake.output.cfg).parent,
        extra={
            "model": w.model,
            "layer": w.layer,
            "dataset": w.dataset,
            "sae": w.sae,
            "training_data": snakemake.input.train,
            "validation_data": snakemake.input.val,
        },
        device=snakemake.config["device"],
    )
