"""clipsae.runtime.fingerprint: which edits change a rule's code fingerprint, and which do not.

Each test edits a copy of the package in a temporary directory and fingerprints the workflow
scripts in a fresh process with that copy on PYTHONPATH, as the Snakefile parse would.
"""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from clipsae.runtime.fingerprint import PACKAGE_DIR, import_closure, parse_module

REPO = Path(__file__).resolve().parents[1]
SCRIPTS = REPO / "workflow_scripts"
PROBE = """
import json, sys
from pathlib import Path
from clipsae.runtime import fingerprint as fp
scripts = sorted(Path(sys.argv[1]).glob("*.py"))
print(json.dumps({
    "package": str(fp.PACKAGE_DIR),
    "fingerprints": {s.stem: fp.code_fingerprint(s) for s in scripts},
    "closures": {
        s.stem: [fp._label(p) for p in fp.import_closure(s.resolve())] for s in scripts
    },
    "heavy": sorted(m for m in ("torch", "open_clip", "numpy", "polars") if m in sys.modules),
}))
"""


@pytest.fixture
def tree(tmp_path: Path) -> Path:
    """A copy of the package and the workflow scripts, to edit."""
    shutil.copytree(PACKAGE_DIR, tmp_path / "clipsae", ignore=shutil.ignore_patterns("__pycache__"))
    shutil.copytree(SCRIPTS, tmp_path / "workflow_scripts")
    return tmp_path


def probe(tree: Path, scripts: Path | None = None) -> dict:
    run = subprocess.run(
        [sys.executable, "-c", PROBE, str(scripts or tree / "workflow_scripts")],
        cwd=tree,
        env={"PYTHONPATH": str(tree)},
        capture_output=True,
        text=True,
        check=True,
    )
    result = json.loads(run.stdout)
    assert Path(result["package"]) == (tree / "clipsae").resolve()
    return result


def changed_rules(before: dict, after: dict) -> set[str]:
    return {rule for rule, value in after["fingerprints"].items()
            if before["fingerprints"][rule] != value}  # fmt: skip


def edit(path: Path, old: str, new: str) -> None:
    text = path.read_text()
    assert text.count(old) >= 1, f"{old!r} not in {path}"
    path.write_text(text.replace(old, new, 1))


def test_a_trainer_change_changes_the_rules_that_import_the_trainer(tree: Path) -> None:
    before = probe(tree)
    assert before["heavy"] == [], "fingerprinting imported heavy modules"
    train = tree / "clipsae" / "sae" / "train.py"
    train.write_text(train.read_text() + "\nTRAINER_REVISION = 2\n")
    after = probe(tree)
    assert changed_rules(before, after) == {
        "train_sae", "eval_reconstruction", "eval_zeroshot", "eval_extras", "encode_features",
        "name_by_vocab", "clean_interpretations", "explore", "ground_truth", "steering",
        "sae_alignment",
    }  # fmt: skip
    # Every one of them loads SAEs through clipsae.sae, whose __init__ names the trainer (its
    # exports are imported on first use, and the fingerprint follows what it names).
    assert all("clipsae/sae/train.py" in after["closures"][r] for r in changed_rules(before, after))


def test_a_collage_change_changes_only_the_rules_that_draw_collages(tree: Path) -> None:
    before = probe(tree)
    collage = tree / "clipsae" / "interpret" / "collage.py"
    collage.write_text(collage.read_text() + "\nDEFAULT_TILE = 64\n")
    # explore draws its cluster sheet, and the VLM simulation (in clean_interpretations) its
    # numbered grids, with make_collage.
    assert changed_rules(before, probe(tree)) == {"collages", "clean_interpretations", "explore"}


def test_comments_formatting_and_docstrings_change_nothing(tree: Path) -> None:
    before = probe(tree)
    train = tree / "clipsae" / "sae" / "train.py"
    edit(train, '"""', '"""An edited module docstring.\n\n')
    edit(train, "\ndef ", "\n# a new comment\n\n\ndef ")
    edit(train, "from __future__ import annotations", "from __future__ import (annotations)")
    edit(train, "\ndef ", "\n\n\ndef ")
    collage = tree / "clipsae" / "interpret" / "collage.py"
    collage.write_text(collage.read_text() + "\n\n# trailing comment\n")
    assert changed_rules(before, probe(tree)) == set()


def test_a_changed_workflow_script_changes_its_own_rule(tree: Path) -> None:
    before = probe(tree)
    script = tree / "workflow_scripts" / "report.py"
    script.write_text(script.read_text() + "\nassert True\n")
    assert changed_rules(before, probe(tree)) == {"report"}


def test_where_the_scripts_live_changes_nothing(tree: Path) -> None:
    """Scripts sorting before or after the package (``a_scripts/`` vs ``workflow_scripts/``)."""
    elsewhere = shutil.copytree(tree / "workflow_scripts", tree / "a_scripts")
    assert probe(tree)["fingerprints"] == probe(tree, elsewhere)["fingerprints"]


def test_relative_and_submodule_imports_are_followed(tree: Path) -> None:
    """``from . import x``, ``from ..pkg import mod`` and ``from pkg import mod`` all count."""
    (tree / "clipsae" / "steps" / "probe_step.py").write_text(
        "from . import common\nfrom ..interpret import collage\nfrom clipsae.report import table\n"
    )
    (tree / "workflow_scripts" / "probe_rule.py").write_text(
        "from clipsae.steps.probe_step import common\n"
    )
    closure = set(probe(tree)["closures"]["probe_rule"])
    assert {
        "probe_rule.py",
        "clipsae/__init__.py",
        "clipsae/steps/__init__.py",
        "clipsae/steps/probe_step.py",
        "clipsae/steps/common.py",
        "clipsae/interpret/__init__.py",
        "clipsae/interpret/collage.py",
        "clipsae/report/table.py",
    } <= closure
    assert "clipsae/sae/train.py" not in closure


def test_the_real_closures_keep_stages_apart() -> None:
    """What the rerun plans rely on: preparing data never depends on models or SAEs."""
    prepare = {p.name for p in import_closure((SCRIPTS / "prepare_dataset.py").resolve())}
    assert "clip.py" not in prepare and "train.py" not in prepare
    extract = import_closure((SCRIPTS / "extract_image.py").resolve())
    assert PACKAGE_DIR / "sae" / "train.py" not in extract
    assert PACKAGE_DIR / "activations" / "extract.py" in extract


def test_imports_are_recorded_absolute(tmp_path: Path) -> None:
    source = tmp_path / "script.py"
    source.write_text(
        "from __future__ import annotations\nimport os.path\n"
        "def f():\n    from torch import nn\n    import clipsae.sae.io as io\n"
    )
    assert parse_module(source.resolve()).imports == (
        "os.path", "torch", "torch.nn", "clipsae.sae.io"
    )  # fmt: skip
