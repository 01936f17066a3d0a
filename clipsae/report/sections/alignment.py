"""Seed-to-seed alignment: two SAEs trained alike but for the seed, matched latent to latent."""

from __future__ import annotations

from clipsae.report.document import ReportInputs
from clipsae.report.table import markdown_lines, read_json

COLUMNS = ("run", "aligned with", "seeds", "latents", "decoder mean cos", "decoder > thr",
           "encoder mean cos", "encoder > thr", "random mean cos")  # fmt: skip


def section(inputs: ReportInputs) -> list[str]:
    if not inputs.alignments:
        return []
    rows, threshold = [], None
    for run in inputs.alignments:
        result = read_json(run["alignment"])
        dec, enc, rnd = result["decoder"], result["encoder"], result["random"]
        threshold = dec["threshold"]
        partner = result.get("saes", [run.run.sae, "?"])[1]
        seeds = " / ".join(str(seed) for seed in result["seeds"])
        rows.append((run.run.title, partner, seeds, dec["n_matched"], dec["mean_cosine"],
                     f"{dec['frac_above']:.1%}", enc["mean_cosine"], f"{enc['frac_above']:.1%}",
                     rnd["mean_cosine"]))  # fmt: skip
    return [
        "## Seed-to-seed alignment",
        "",
        "Each SAE with `align_with` against its partner, trained alike but for the seed: "
        "decoder rows (and, separately, encoder columns) matched one to one by cosine "
        f"(Hungarian), their mean cosine and the share above {threshold}. `random mean cos` "
        "matches the first decoder against as many random directions: the level chance reaches "
        "in this dimension.",
        "",
        *markdown_lines(COLUMNS, rows),
        "",
    ]
