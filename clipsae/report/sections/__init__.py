"""The report's sections, in the order they appear; each module owns one."""

from clipsae.report.sections import (
    accuracy,
    alignment,
    data,
    explore,
    extras,
    ground_truth,
    interpretations,
    latents,
    models,
    monosemanticity,
    published,
    results,
    sparsity,
    splice,
    steering,
    vlm,
)

SECTIONS = (
    results.section,
    accuracy.section,
    published.section,
    sparsity.section,
    extras.section,
    splice.section,
    monosemanticity.section,
    alignment.section,
    data.section,
    models.section,
    ground_truth.section,
    steering.section,
    interpretations.section,
    latents.section,
    explore.section,
    vlm.section,
)
