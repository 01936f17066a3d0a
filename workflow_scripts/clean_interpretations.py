"""Snakemake adapter: rule clean_interpretations."""

from pathlib import Path

from clipsae.interpret.scoring import DetectionSampling
from clipsae.runtime.logs import job_log
from clipsae.steps.interpretations import clean_and_score_names

with job_log(snakemake.log[0]):
    clean_and_score_names(
        vocab_csv=Path(snakemake.input.names),
        vlm_csv=Path(snakemake.input.vlm),
        manual_csv=Path(snakemake.input.manual) if snakemake.input.manual else None,
        bilingual_tsv=None,
        sae_dir=Path(snakemake.input.sae[0]).parent,
        layer_acts=Path(snakemake.input.acts),
        final_acts=Path(snakemake.input.final),
        model=snakemake.params.model,
        weights=Path(snakemake.input.weights) if snakemake.input.weights else None,
        out_csv=Path(snakemake.output.table),
        out_summary=Path(snakemake.output.summary),
        sampling=DetectionSampling(**snakemake.params.scoring),
        device=snakemake.config["device"],
    )
