"""Snakemake adapter: rule eval_zeroshot."""

from pathlib import Path

from clipsae.runtime.logs import job_log
from clipsae.steps.zeroshot import eval_zeroshot

w = snakemake.wildcards
# The batch size changes no output, so it comes from the config, not params.
model = {**snakemake.params.model, "batch_size": snakemake.config["models"][w.model]["batch_size"]}
with job_log(snakemake.log[0]):
    eval_zeroshot(
        sae_dir=Path(snakemake.input.sae[0]).parent,
        acts_dir=Path(snakemake.input.acts),
        classes_npy=Path(snakemake.input.classes),
        layer=w.layer,
        model=model,
        weights=snakemake.input.weights or None,
        dataset_name=w.evalset,
        dataset_entry=snakemake.params.dataset,
        index_dir=Path(snakemake.input.index).parent,
        out_json=Path(snakemake.output[0]),
        device=snakemake.config["device"],
    )
