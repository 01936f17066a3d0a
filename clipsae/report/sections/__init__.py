"""The report's sections, in the order they appear; each module owns one."""

from clipsae.report.sections import (
    data,
    interpretations,
    latents,
    models,
    results,
    sparsity,
    vlm,
)

SECTIONS = (
    results.section,
    data.section,
    sparsity.section,
    models.section,
    interpretations.section,
    latents.section,
    vlm.section,
)
