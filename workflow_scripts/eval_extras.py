"""Snakemake adapter: rule eval_extras."""

from pathlib import Path

from clipsae.runtime.logs import job_log
from clipsae.steps.extras import eval_extras

with job_log(snakemake.log[0]):
    eval_extras(
        sae_dir=Path(snakemake.input.sae[0]).parent,
        train_acts=Path(snakemake.input.train),
        test_acts=Path(snakemake.input.test),
        classes_npy=Path(snakemake.input.classes),
        layer=snakemake.wildcards.layer,
        out_json=Path(snakemake.output[0]),
        embeddings=Path(snakemake.input.embeddings),
        monosemanticity_settings=snakemake.params.monosemanticity,
        device=snakemake.config["device"],
    )
