"""Per evaluation: the linear probe, the error baselines and the inference-k sweep
(``clipsae.steps.extras``), beside the zero-shot numbers of the results table."""

from __future__ import annotations

from clipsae.report.document import ReportInputs
from clipsae.report.table import markdown_lines, read_json

PROBE = ("probe_accuracy_clip", "probe_accuracy_sae", "probe_agreement", "probe_kl_clip_to_sae")
SWEEP = ("l0", "fvu", "cosine", "dead_frac")


def _baseline(extras: dict, name: str) -> object:
    baselines = extras.get("baselines")
    return None if baselines is None else baselines[name]["accuracy_sae"]


def section(inputs: ReportInputs) -> list[str]:
    if not inputs.extras:
        return []
    probe_rows, sweep_rows, skipped = [], [], []
    for run in inputs.extras:
        extras = read_json(run["extras"])
        title = run.run.title
        probe_rows.append(
            (title, *(extras["probe"][key] for key in PROBE),
             _baseline(extras, "error_only"), _baseline(extras, "mean_ablated"))
        )  # fmt: skip
        if "baselines_skipped" in extras:
            skipped.append(f"- {title}: {extras['baselines_skipped']}")
        for point in extras.get("sweep", []):
            size = f"k={point['k']}" if "k" in point else f"prefix={point['prefix']}"
            sweep_rows.append((title, size, *(point[key] for key in SWEEP)))
    columns = ("evaluation", "probe CLIP", "probe CLIP+SAE", "agreement", "KL", "error only",
               "mean ablated")  # fmt: skip
    lines = [
        "## Probe, error baselines and sweep",
        "",
        "Linear probe: logistic regression fitted on the CLIP activations of the evaluation "
        "dataset's train split, scored on its test split as CLIP sees it and as the SAE "
        "reconstructs it (`agreement`: same argmax; KL from CLIP to CLIP+SAE). Error baselines "
        "(zero-shot accuracy, `final` only): the reconstruction error alone in place of the "
        "embedding, and the train split's mean embedding in place of every one.",
        "",
        *markdown_lines(columns, probe_rows),
        "",
        *skipped,
    ]
    if sweep_rows:
        lines += [
            "",
            "Reconstruction on the test split at each inference k (TopK family; the last is the "
            "dense path) or nested size (Matryoshka).",
            "",
            *markdown_lines(("evaluation", "size", *SWEEP), sweep_rows),
        ]
    return [*lines, ""]
