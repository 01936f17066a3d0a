"""Per evaluation: the MonoSemanticity score of the SAE's latents against that of the raw CLIP
dimensions of the same layer (``eval_extras``)."""

from __future__ import annotations

from clipsae.report.document import ReportInputs
from clipsae.report.table import markdown_lines, read_json

COLUMNS = ("evaluation", "images", "MS latents", "latents scored", "MS CLIP dims",
           "dims scored", "ratio")  # fmt: skip


def section(inputs: ReportInputs) -> list[str]:
    rows = []
    for run in inputs.extras:
        ms = read_json(run["extras"]).get("monosemanticity")
        if ms is None:
            continue
        ratio = ms["ms_sae"] / ms["ms_clip"] if ms["ms_clip"] else None
        rows.append((run.run.title, ms["n_images"], ms["ms_sae"], ms["ms_sae_scored"],
                     ms["ms_clip"], ms["ms_clip_scored"], ratio))  # fmt: skip
    if not rows:
        return []
    return [
        "## Monosemanticity",
        "",
        "MonoSemanticity score (Pach et al. 2025) on a seeded subset of the evaluation "
        "dataset's test images: for each unit, the mean cosine of the final image embeddings "
        "of every pair of images, weighted by how strongly the unit fires on both (min-max "
        "scaled). 1: the unit fires only on images that look alike; the mean similarity of the "
        "images: it fires on anything. Means over the units that fire on at least two images; "
        "the SAE's latents against the raw dimensions of the layer it reads.",
        "",
        *markdown_lines(COLUMNS, rows),
        "",
    ]
