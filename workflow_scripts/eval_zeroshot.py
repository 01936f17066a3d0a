"""Snakemake adapter: rule eval_zeroshot."""

from pathlib import Path

from clipsae.runtime.logs import job_log
from clipsae.steps.zeroshot import eval_zeroshot

w = snakemake.wildcards
# The batch size changes no output, so it comes from the config, not params.
model = {**snakemake.params.model, "batch_size": snakemake.config["models"][w.model]["batch_size"]}
with job_log(snakemake.log[0]):
    eval_zeroshot(
        Path(snakemake.input.sae[0]).parent,
        Path(snakemake.input.acts),
        Path(snakemake.input.classes),
        w.layer,
        model,
        snakemake.input.weights or None,
        w.dataset,
        snakemake.params.dataset,
        Path(snakemake.input.index).parent,
        Path(snakemake.output[0]),
        snakemake.config["device"],
    )
