"""Snakemake adapter: rule ground_truth."""

from pathlib import Path

from clipsae.runtime.logs import job_log
from clipsae.steps.ground_truth import run_ground_truth

w = snakemake.wildcards
with job_log(snakemake.log[0]):
    run_ground_truth(
        sae_dir=Path(snakemake.input.sae[0]).parent,
        train_acts=Path(snakemake.input.train),
        test_acts=Path(snakemake.input.test),
        index_dir=Path(snakemake.input.index).parent,
        out_parquet=Path(snakemake.output.table),
        out_json=Path(snakemake.output.summary),
        layer=w.layer,
        names_csv=Path(snakemake.input.names),
        vocab_npy=Path(snakemake.input.vocab) if w.layer == "final" else None,
        top_n=snakemake.params.top_n,
        center=snakemake.params.center,
        device=snakemake.config["device"],
    )
