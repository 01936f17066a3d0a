"""Snakemake adapter: rule eval_splice."""

from pathlib import Path

from clipsae.runtime.logs import job_log
from clipsae.steps.splice import eval_splice

with job_log(snakemake.log[0]):
    eval_splice(
        train_acts=Path(snakemake.input.train),
        test_acts=Path(snakemake.input.test),
        classes_npy=Path(snakemake.input.classes),
        vocab_npy=Path(snakemake.input.vocab),
        out_json=Path(snakemake.output[0]),
        **snakemake.params.splice,
    )
