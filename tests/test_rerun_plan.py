"""What `snakemake -n` plans on finished results after one change: exactly what depends on it.

The finished state is made without running a job: every planned output is created empty, then
`snakemake --touch --forceall` marks the jobs done, which records their params (the `code=`
fingerprint among them) as a real run would. A real run of even this tiny config takes minutes
on 2 cores, and plans do not depend on the outputs' content. The workflow and the package are
copies in a temporary directory, so the code-change tests can edit the library.
"""

from __future__ import annotations

import re
import shutil
import subprocess
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest
import yaml
from configs import tiny_built_model

ROOT = Path(__file__).resolve().parent.parent
SNAKEMAKE = [sys.executable, "-m", "snakemake", "--cores", "1"]
TARGET = "results/report.md"
AGGREGATES = {("results_table", ""), ("report", "")}
PER_RUN_RULES = {"train_sae", "eval_reconstruction", "eval_zeroshot", "eval_extras",
                 "encode_features", "collages", "name_by_vocab", "interpret_vlm",
                 "clean_interpretations", "explore", "ground_truth", "steering"}  # fmt: skip

EVAL_RULES = {"eval_reconstruction", "eval_zeroshot", "eval_extras"}

pytestmark = pytest.mark.slow


def small_config() -> dict:
    """Two datasets (to see one change alone) on one layer of a built tiny model."""
    synthetic = {"source": "synthetic", "n_train": 64, "n_test": 32}
    return {
        "device": "auto",
        "vocabulary": "config/vocab/shapes_en_ru.tsv",
        "models": {"tiny": tiny_built_model()},
        "datasets": {
            "shapes": {**synthetic, "label_by": "shape", "seed": 1, "templates": ["a {}."]},
            "colors": {**synthetic, "label_by": "color", "seed": 2, "templates": ["a {} one."]},
        },
        "saes": {"topk": {"arch": "topk", "k": 4, "expansion": 2, "epochs": 1}},
        "extraction": {"num_workers": 0},
    }


def snakemake(workdir: Path, *args: str) -> str:
    run = subprocess.run(
        [*SNAKEMAKE, *args],
        cwd=workdir,
        capture_output=True,
        text=True,
        timeout=600,
        env={"PYTHONPATH": str(workdir), "PATH": f"{Path(sys.executable).parent}:/usr/bin:/bin"},
    )
    assert run.returncode == 0, run.stderr[-4000:]
    return run.stdout + run.stderr


def planned(output: str) -> set[tuple[str, str]]:
    """(rule, wildcards as written) of every job a dry run plans."""
    jobs = set()
    for block in re.split(r"\n(?=(?:local)?rule \w+:)", output):
        head = re.match(r"(?:local)?rule (\w+):", block.strip())
        if head:
            found = re.search(r"^\s+wildcards: (.+)$", block, re.M)
            jobs.add((head.group(1), found.group(1) if found else ""))
    return jobs


def planned_outputs(output: str) -> list[Path]:
    return [Path(p) for line in re.findall(r"^\s+output: (.+)$", output, re.M)
            for p in line.split(", ")]  # fmt: skip


def write_config(workdir: Path, config: dict) -> None:
    (workdir / "config" / "config.yaml").write_text(yaml.safe_dump(config, sort_keys=False))


@pytest.fixture(scope="module")
def workdir(tmp_path_factory) -> Path:
    work = tmp_path_factory.mktemp("rerun_plan")
    shutil.copy(ROOT / "Snakefile", work)
    for folder in ("rules", "workflow_scripts", "envs", "config", "clipsae"):
        shutil.copytree(ROOT / folder, work / folder, ignore=shutil.ignore_patterns("__pycache__"))
    write_config(work, small_config())
    outputs = planned_outputs(snakemake(work, "-n", TARGET))
    for path in outputs:
        # The only outputs without a suffix are directory() outputs (activations, collages).
        if path.suffix:
            (work / path).parent.mkdir(parents=True, exist_ok=True)
            (work / path).touch()
        else:
            (work / path).mkdir(parents=True, exist_ok=True)
    # Forced: the fresh placeholders would otherwise count as done, with no metadata recorded.
    snakemake(work, "--touch", "--forceall", TARGET)
    assert len(list((work / ".snakemake" / "metadata").iterdir())) == len(outputs)
    assert planned(snakemake(work, "-n", TARGET)) == set()
    return work


@contextmanager
def changed(
    workdir: Path, *, config: dict | None = None, code: str | None = None
) -> Iterator[None]:
    """The config replaced, or a statement appended to one package module, then restored."""
    module = workdir / "clipsae" / code if code else None
    original = module.read_text() if module else None
    if config is not None:
        write_config(workdir, config)
    if module:
        module.write_text(original + "\nPLAN_TEST_REVISION = 2\n")
    try:
        yield
    finally:
        write_config(workdir, small_config())
        if module:
            module.write_text(original)


def plan(workdir: Path, **change) -> set[tuple[str, str]]:
    with changed(workdir, **change):
        return planned(snakemake(workdir, "-n", TARGET))


def run_jobs(rules: set[str], dataset: str = "(shapes|colors)", layer: str = "final") -> set:
    """The per-(model, layer, dataset, sae) jobs of ``rules`` that the tiny config has; an
    evaluation rule's on the run's own training dataset (the default ``eval``)."""
    return {
        (rule, f"model=tiny, layer={layer}, dataset={d}, sae=topk" + on(rule, d))
        for rule in rules
        for d in ("shapes", "colors")
        if re.fullmatch(dataset, d)
    }


def on(rule: str, evalset: str) -> str:
    return f", evalset={evalset}" if rule in EVAL_RULES else ""


def test_execution_settings_replan_nothing(workdir: Path) -> None:
    config = small_config()
    config["device"] = "cpu"
    config["extraction"]["num_workers"] = 2
    config["models"]["tiny"]["batch_size"] = 16
    config["interpret"] = {"cache": "elsewhere/vlm"}
    assert plan(workdir, config=config) == set()


def test_templates_replan_only_that_datasets_text_and_zero_shot(workdir: Path) -> None:
    config = small_config()
    config["datasets"]["colors"]["templates"] = ["a photo of a {} shape."]
    assert plan(workdir, config=config) == {
        ("embed_text", "model=tiny, name=classes_colors"),
        # eval_zeroshot, eval_extras and SpLiCE read the classes; explore searches the latents
        # for a class name, by its embedding.
        *run_jobs({"eval_zeroshot", "eval_extras", "explore"}, dataset="colors"),
        ("eval_splice", "model=tiny, dataset=colors"),
        # Steering reads its own classes and, as the control, the other factor's: both datasets.
        *run_jobs({"steering"}),
        *AGGREGATES,
    }


def test_a_new_evaluation_dataset_plans_only_its_evaluations_and_the_aggregates(workdir: Path):
    config = small_config()
    config["saes"]["topk"]["eval"] = ["shapes", "colors"]
    assert (
        plan(workdir, config=config)
        == {
            (rule, f"model=tiny, layer=final, dataset={train}, sae=topk, evalset={evalset}")
            for rule in EVAL_RULES
            for train, evalset in (("shapes", "colors"), ("colors", "shapes"))
        }
        | AGGREGATES
    )


def test_a_new_layer_plans_only_that_layers_jobs(workdir: Path) -> None:
    config = small_config()
    config["models"]["tiny"]["layers"] = ["final", "block1"]
    extractions = {
        ("extract_image", f"model=tiny, dataset={d}, split={s}, layer=block1")
        for d in ("shapes", "colors")
        for s in ("train", "test")
    }
    assert plan(workdir, config=config) == {
        *extractions,
        *run_jobs(PER_RUN_RULES - {"steering"}, layer="block1"),  # steering is final-only
        *AGGREGATES,
    }


def test_collage_code_replans_collages_what_reads_them_and_the_report(workdir: Path) -> None:
    # interpret_vlm names the collages; clean_interpretations reads those names, explore reads
    # the cleaned names (and draws its own collages).
    assert plan(workdir, code="interpret/collage.py") == {
        *run_jobs({"collages", "interpret_vlm", "clean_interpretations", "explore"}),
        ("report", ""),
    }


def test_trainer_code_replans_training_and_everything_downstream(workdir: Path) -> None:
    assert plan(workdir, code="sae/train.py") == {*run_jobs(PER_RUN_RULES), *AGGREGATES}
