"""The report as a sequence of sections, each contributed by one stage.

A stage that has something to show adds a module under ``clipsae.report.sections`` and one entry
in ``SECTIONS``; the files it reads reach it through ``ReportInputs``, bound from the report
rule's declared inputs, so a new feature never edits another stage's section.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from clipsae.report.runs import RunFiles
from clipsae.report.table import SpliceFile
from clipsae.runtime.atomic import atomic_output


@dataclass(frozen=True)
class Extraction:
    """One split of one dataset through one model layer: its shard folder."""

    model: str
    dataset: str
    split: str
    layer: str
    directory: Path

    @property
    def meta(self) -> Path:
        return self.directory / "meta.json"


@dataclass(frozen=True)
class ReportInputs:
    table: Path
    runs: Sequence[RunFiles]
    # Runs on generated datasets (``ground_truth``) and their final-layer runs (``steering``).
    truth: Sequence[RunFiles]
    steering: Sequence[RunFiles]
    extractions: Sequence[Extraction]
    # Per built or shipped model: its build record (``build.json``, or the shipped ``<arch>.json``).
    builds: Mapping[str, Path]
    out_md: Path
    figures_dir: Path
    # Per evaluation (run and evaluation dataset): the probe, baselines and sweep (``extras``).
    extras: Sequence[RunFiles] = ()
    # Per (model, dataset) evaluated at final: the SpLiCE baseline (``splice.json``).
    splice: Sequence[SpliceFile] = ()
    # Per run of an SAE with `align_with`: its seed-to-seed alignment (``alignment``).
    alignments: Sequence[RunFiles] = ()
    # The `published` block of each `saes` entry that has one (config, not a file).
    published: Mapping[str, Mapping] = field(default_factory=dict)

    def relative(self, path: Path) -> str:
        """``path`` as a link from the report's folder."""
        return Path(os.path.relpath(path, self.out_md.parent)).as_posix()


Section = Callable[[ReportInputs], list[str]]


def write_report(inputs: ReportInputs, sections: Sequence[Section]) -> None:
    lines = ["# clipsae report", ""]
    for section in sections:
        lines += section(inputs)
    with atomic_output(inputs.out_md) as tmp:
        tmp.write_text("\n".join(lines), encoding="utf-8")
