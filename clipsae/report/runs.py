"""One (model, layer, dataset, SAE) run and the files the workflow handed over for it.

The report reads only the paths its rule declares: the adapter binds each declared per-run input
list to its run, so a section never rebuilds a path from a naming convention.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

RUN_KEYS = ("model", "layer", "dataset", "sae", "evalset")


@dataclass(frozen=True)
class Run:
    """A run (``dataset``: the one its SAE is trained on), or with ``evalset`` one of its
    evaluations."""

    model: str
    layer: str
    dataset: str
    sae: str
    evalset: str | None = None

    @property
    def title(self) -> str:
        on = "" if self.evalset in (None, self.dataset) else f", evaluated on {self.evalset}"
        return f"{self.sae} on {self.model} / {self.layer} / {self.dataset}{on}"


@dataclass(frozen=True)
class RunFiles:
    """A run and its input files by role (``recon``, ``stats``, ``collages``, ...)."""

    run: Run
    files: Mapping[str, Path]

    def __getitem__(self, role: str) -> Path:
        try:
            return self.files[role]
        except KeyError:
            raise KeyError(
                f"run {self.run.title} has no {role!r} input (has: {', '.join(self.files)})"
            ) from None


def bind_runs(
    runs: Sequence[Mapping[str, str]], per_run: Mapping[str, Sequence[str]]
) -> list[RunFiles]:
    """Zip per-run input lists (each in ``runs`` order, as the rules build them) with their runs."""
    for role, paths in per_run.items():
        if len(paths) != len(runs):
            raise ValueError(f"input {role!r} has {len(paths)} files for {len(runs)} runs")
    return [
        RunFiles(
            run=Run(**{k: run[k] for k in RUN_KEYS if k in run}),
            files={role: Path(paths[i]) for role, paths in per_run.items()},
        )
        for i, run in enumerate(runs)
    ]
