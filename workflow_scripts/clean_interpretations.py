"""Snakemake adapter: rule clean_interpretations."""

from pathlib import Path

from clipsae.interpret.scoring import DetectionSampling
from clipsae.interpret.vlm import VLMConfig
from clipsae.runtime.logs import job_log
from clipsae.steps.interpretations import SimulationInputs, clean_and_score_names

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
        simulation=SimulationInputs(
            # The full entry, execution keys too; params hold only what the answers depend on.
            vlm=VLMConfig.from_mapping(snakemake.config["interpret"]["vlm"]),
            cache_dir=Path(snakemake.config["interpret"]["cache"]),
            sampling=DetectionSampling(**snakemake.params.simulation),
            dataset_name=snakemake.wildcards.dataset,
            dataset_entry=snakemake.params.dataset,
            index_dir=Path(snakemake.input.index).parent,
            out_csv=Path(snakemake.output.simulation),
        ),
        device=snakemake.config["device"],
    )
