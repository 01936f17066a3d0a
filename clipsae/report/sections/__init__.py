"""The report's sections, in the order they appear; each module owns one."""

from clipsae.report.sections import (
    data,
    explore,
    ground_truth,
    interpretations,
    latents,
    models,
    results,
    sparsity,
    steering,
    vlm,
)

SECTIONS = (
    results.section,
    data.section,
    sparsity.section,
    models.section,
    ground_truth.section,
    steering.section,
    interpretations.section,
    latents.section,
    explore.section,
    vlm.section,
)
