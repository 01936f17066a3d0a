"""The report's sections, in the order they appear; each module owns one."""

from clipsae.report.sections import (
    data,
    explore,
    extras,
    ground_truth,
    interpretations,
    latents,
    models,
    published,
    results,
    sparsity,
    steering,
    vlm,
)

SECTIONS = (
    results.section,
    published.section,
    extras.section,
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
