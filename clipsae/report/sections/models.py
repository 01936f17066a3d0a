"""How each embedded CLIP was made: built in this run (``pretrained: build``) or shipped.

The held-out zero-shot per factor is the first thing to read: every latent name and every
ground-truth figure downstream is bounded by what the model sees.
"""

from __future__ import annotations

from clipsae.report.document import ReportInputs
from clipsae.report.table import read_json


def _heldout(scores: dict) -> str:
    factors = ", ".join(f"{k} {v:.3f}" for k, v in scores.items() if k != "n")
    return f"held-out zero-shot on {scores['n']} generated images: {factors}"


def section(inputs: ReportInputs) -> list[str]:
    if not inputs.builds:
        return []
    lines = ["## Embedded CLIP models", ""]
    for model, path in sorted(inputs.builds.items()):
        info = read_json(path)
        trained = (
            f"trained from scratch on generated captions, {info['config']['steps']} steps, "
            f"contrastive loss {info['initial_loss']:.3f} → {info['final_loss']:.3f}"
        )
        shipped = info.get("shipped")
        if shipped is None:
            heldout = info.get("heldout_zeroshot")
            lines.append(
                f"- `{model}` ({info['arch']}): {trained}"
                + (f"; {_heldout(heldout)}" if heldout else "")
            )
            continue
        lines.append(
            f"- `{model}` ({info['arch']}): the package's shipped weights "
            f"({shipped['dtype']}, sha256 `{shipped['sha256'][:12]}…`), {trained}; "
            f"{_heldout(shipped['heldout_zeroshot'])}. Rebuilt by `{shipped['rebuild']}`, "
            f"then `clipsae ship-clip` ([record]({inputs.relative(path)}))."
        )
    return [*lines, ""]
