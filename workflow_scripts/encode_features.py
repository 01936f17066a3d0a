"""Snakemake adapter: rule encode_features."""

from pathlib import Path

from clipsae.interpret.features import WeakSampling
from clipsae.runtime.logs import job_log
from clipsae.steps.features import encode_features

params = snakemake.params
weak = WeakSampling.from_settings(n_weak=params.n_weak, weak_quantile=params.weak_quantile)
with job_log(snakemake.log[0]):
    encode_features(
        sae_dir=Path(snakemake.input.sae[0]).parent,
        acts_dir=Path(snakemake.input.acts),
        out_dir=Path(snakemake.output.stats).parent,
        top_k=params.top_k,
        device=snakemake.config["device"],
        weak=weak,
    )
