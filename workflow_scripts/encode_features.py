"""Snakemake adapter: rule encode_features."""

from pathlib import Path

from clipsae.interpret.features import WeakSampling
from clipsae.runtime.logs import job_log
from clipsae.steps.features import encode_features

with job_log(snakemake.log[0]):
    encode_features(
        Path(snakemake.input.sae[0]).parent,
        Path(snakemake.input.acts),
        Path(snakemake.output.stats).parent,
        snakemake.params.top_k,
        snakemake.params.device,
        weak=WeakSampling(n=p.n_weak, quantile=p.weak_quantile)
        if (p := snakemake.params).n_weak
        else None,
    )
