"""How each embedded CLIP was built (only models with ``pretrained: build``)."""

from __future__ import annotations

from clipsae.report.document import ReportInputs
from clipsae.report.table import read_json


def section(inputs: ReportInputs) -> list[str]:
    if not inputs.builds:
        return []
    lines = ["## Embedded CLIP models", ""]
    for path in sorted(inputs.builds):
        info = read_json(path)
        lines.append(
            f"- `{path.parent.name}` ({info['arch']}): trained from scratch on generated "
            f"captions, {info['config']['steps']} steps, contrastive loss "
            f"{info['initial_loss']:.3f} → {info['final_loss']:.3f}"
        )
    return [*lines, ""]
