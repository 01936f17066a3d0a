"""The whole workflow on a reduced demo config, in a temporary directory."""

from __future__ import annotations

import hashlib
import json
import re
import shutil
import subprocess
import sys
from pathlib import Path

import polars as pl
import pytest
import yaml
from vlm_server import VLMServer

from clipsae.interpret.cleaning import INTERPRETATION_COLUMNS
from clipsae.report.table import COLUMNS

ROOT = Path(__file__).resolve().parent.parent
SNAKEMAKE = [sys.executable, "-m", "snakemake"]
AGGREGATES = {"results_table", "report"}

pytestmark = pytest.mark.slow


def small_config() -> dict:
    """The demo with its model built in the run (the shipped weights' recipe), all of it small."""
    config = yaml.safe_load((ROOT / "config" / "experiments" / "embedded_clip.yaml").read_text())
    config["models"]["tiny"]["layers"] = ["final", "block1"]
    config["models"]["tiny"]["build"].update(n_images=256, steps=15, batch_size=32)
    for entry in config["datasets"].values():
        entry.update(n_train=160, n_test=48)
    # Every SAE alike, so that topk8-x8-seed1 stays topk8-x8 but for the seed (align_with). The
    # demo's BatchTopK goes: it runs the TopK family's code again, for 12 more jobs; so does
    # batchtopk4-d64 (tests/test_demo_truth.py runs it at full size).
    del config["saes"]["batchtopk8-x8"]
    del config["saes"]["batchtopk4-d64"]
    for entry in config["saes"].values():
        entry.update(epochs=2, batch_size=64)
    config["features"].update(n_collages=3)
    return config


def snakemake(
    workdir: Path, *args: str, env: dict[str, str] | None = None
) -> subprocess.CompletedProcess:
    return subprocess.run(
        [*SNAKEMAKE, "--cores", "2", *args],
        cwd=workdir,
        capture_output=True,
        text=True,
        # The whole reduced DAG (89 jobs with the report's SAEs and rules) took 1129 s on 2 loaded
        # cores (load 5-7).
        timeout=1800,
        env={
            "TQDM_DISABLE": "1",
            "PATH": str(Path(sys.executable).parent) + ":/usr/bin:/bin",
            # This checkout's package, not whichever one the environment has installed.
            "PYTHONPATH": str(ROOT),
            **(env or {}),
        },
    )


def write_config(workdir: Path, config: dict) -> None:
    (workdir / "config" / "config.yaml").write_text(yaml.safe_dump(config, sort_keys=False))


def planned_jobs(dry_run_output: str) -> list[tuple[str, dict]]:
    """(rule, wildcards) of every job a dry run plans."""
    jobs = []
    for block in re.split(r"\n(?=(?:local)?rule \w+:)", dry_run_output):
        head = re.match(r"(?:local)?rule (\w+):", block.strip())
        if not head:
            continue
        found = re.search(r"^\s+wildcards: (.+)$", block, re.M)
        wildcards = dict(kv.split("=", 1) for kv in found.group(1).split(", ")) if found else {}
        jobs.append((head.group(1), wildcards))
    return jobs


@pytest.fixture(scope="module")
def workdir(tmp_path_factory) -> Path:
    work = tmp_path_factory.mktemp("workflow")
    for item in ("Snakefile", "rules", "workflow_scripts", "envs"):
        src = ROOT / item
        (shutil.copytree if src.is_dir() else shutil.copy)(src, work / item)
    shutil.copytree(ROOT / "config", work / "config")
    write_config(work, small_config())
    run = snakemake(work, "results/report.md")
    assert run.returncode == 0, run.stderr[-4000:]
    return work


def test_the_report_and_the_results_table(workdir):
    table = pl.read_parquet(workdir / "results" / "tables" / "results.parquet")
    assert table.columns == COLUMNS
    # One CLIP row and one SpLiCE row per dataset; a CLIP+SAE row per run: topk8-x8 on
    # 2 layers x 2 datasets, its seed-1 twin and the Matryoshka SAE on final / shapes.
    assert table.group_by("variant").len().sort("variant").rows() == [
        ("CLIP", 2), ("CLIP+SAE", 6), ("SpLiCE", 2)
    ]  # fmt: skip
    sae_rows = table.filter(pl.col("variant") == "CLIP+SAE")
    topk = sae_rows.filter(pl.col("arch") == "topk")
    assert topk["L0"].to_list() == pytest.approx([8.0] * 5)
    assert sae_rows["dict_size"].to_list() == [1024] * 6
    assert sae_rows["probe_accuracy"].is_not_null().all()
    for row in sae_rows.iter_rows(named=True):
        assert 0 <= row["FVU"] < 1.5 and row["R2Score"] == pytest.approx(1 - row["FVU"])
        clip = table.filter(
            (pl.col("variant") == "CLIP") & (pl.col("dataset") == row["dataset"])
        ).row(0, named=True)  # fmt: skip
        assert row["delta_accuracy"] == pytest.approx(row["accuracy"] - clip["accuracy"])
    for row in table.filter(pl.col("variant") == "SpLiCE").iter_rows(named=True):
        assert row["L0"] > 0 and 0 < row["cosine"] <= 1 and row["dict_size"] > 0
    alignment = json.loads(
        (workdir / "results/eval/tiny/final/shapes/topk8-x8-seed1/alignment.json").read_text()
    )
    assert alignment["seeds"] == [1, 0] and alignment["saes"] == ["topk8-x8-seed1", "topk8-x8"]
    assert alignment["decoder"]["mean_cosine"] > alignment["random"]["mean_cosine"]
    extras = json.loads(
        (workdir / "results/eval/tiny/block1/shapes/topk8-x8/on_shapes/extras.json").read_text()
    )
    assert extras["monosemanticity"]["n_images"] == 48
    report = (workdir / "results" / "report.md").read_text()
    for heading in ("## Results", "## Sparsity vs reconstruction", "## Embedded CLIP models",
                    "## Names: scores and cleaning", "## VLM naming",
                    "## Probe, error baselines and sweep",
                    "## Exploring the codes: clusters, explain, search",
                    "## Zero-shot accuracy: CLIP vs CLIP+SAE", "## SpLiCE baseline",
                    "## Monosemanticity", "## Seed-to-seed alignment"):  # fmt: skip
        assert heading in report
    # No key in the test environment: VLM naming is skipped, said so, and vocabulary names stand.
    assert "OPENROUTER_API_KEY is not set" in report
    images = re.findall(r"!\[[^\]]*\]\(([^)]+)\)", report)
    assert len(images) == 3 + 6 * 3 + 6 * 2  # figures, 3 collages and 2 explore sheets per run
    assert all((workdir / "results" / path).is_file() for path in images)
    names = pl.read_csv(workdir / "results/interpret/tiny/final/shapes/topk8-x8/vocab.csv")
    assert names.columns == [
        "latent",
        "label_en",
        "label_ru",
        "score",
        "top_en",
        "top_ru",
        "margin",
    ]
    assert names.height == 1024
    assert all(re.search("[а-яё]", ru) for ru in names["label_ru"])
    run_dir = workdir / "results/interpret/tiny/final/colors/topk8-x8"
    chosen = pl.read_csv(run_dir / "interpretations.csv")
    assert chosen.columns == list(INTERPRETATION_COLUMNS)
    assert chosen.height == 1024 and (chosen["source"] == "vocab").all()
    assert all(re.search("[а-яё]", ru) for ru in chosen["label_ru"])
    summary = json.loads((run_dir / "interpretations.json").read_text())
    assert set(summary["detection"]) == {"n_scored", "median_auroc", "median_shuffled"}
    assert (
        summary["simulation"]["skipped_reason"]
        == "environment variable OPENROUTER_API_KEY is not set"
    )
    examples = json.loads(
        (workdir / "results/explore/tiny/final/colors/topk8-x8/examples.json").read_text()
    )
    assert (
        examples["search"]["text"]
        in json.loads((workdir / "results/data/colors/classes.json").read_text())["classes"]
    )
    assert examples["clusters"]["n_rows"] == 48 and 1 <= len(examples["explain"]["latents"]) <= 5


def test_every_rule_leaves_a_log_and_a_benchmark(workdir):
    logs = {p.relative_to(workdir / "logs").parts[0] for p in (workdir / "logs").rglob("*.log")}
    benchmarks = {
        p.relative_to(workdir / "benchmarks").parts[0]
        for p in (workdir / "benchmarks").rglob("*.tsv")
    }
    expected = {"prepare_dataset", "build_embedded_clip", "extract_image", "embed_text",
                "train_sae", "eval_reconstruction", "eval_zeroshot", "eval_extras",
                "encode_features", "collages", "name_by_vocab", "interpret_vlm",
                "clean_interpretations", "explore", "ground_truth", "steering", "eval_splice",
                "sae_alignment", "results_table.log", "report.log"}  # fmt: skip
    assert logs == expected
    assert {b.removesuffix(".tsv") for b in benchmarks} == {
        e.removesuffix(".log") for e in expected
    }


def test_a_second_run_has_nothing_to_do(workdir):
    run = snakemake(workdir, "-n", "results/report.md")
    assert run.returncode == 0
    assert "Nothing to be done" in run.stdout + run.stderr


def test_changing_one_dataset_reruns_its_branch_and_the_aggregates_only(workdir):
    config = small_config()
    config["datasets"]["colors"]["seed"] = 99
    write_config(workdir, config)
    try:
        run = snakemake(workdir, "-n", "results/report.md")
    finally:
        write_config(workdir, small_config())
    assert run.returncode == 0, run.stderr[-3000:]
    jobs = planned_jobs(run.stdout)
    rules = {rule for rule, _ in jobs}
    assert {"prepare_dataset", "extract_image", "train_sae", "report"} <= rules
    for rule, wildcards in jobs:
        if rule in AGGREGATES:
            continue
        if rule == "steering" and wildcards["dataset"] == "shapes":
            continue  # it reads the colour classes as its control factor
        dataset = wildcards.get("dataset") or wildcards.get("name", "").removeprefix("classes_")
        assert dataset == "colors", (rule, wildcards)
    assert "build_embedded_clip" not in rules


KEY = "sk-test-9f3c-DO-NOT-LEAK"
FENCED = (
    'Here is my answer:\n```json\n{"label_en": "Red Shapes.", "label_ru": "красные фигуры",'
    ' "description_en": "Red shapes.", "description_ru": "Красные фигуры."}\n```'
)
SWAPPED = json.dumps({"label_en": "синий", "label_ru": "blue", "description_en": "Синий.",
                      "description_ru": "Blue."}, ensure_ascii=False)  # fmt: skip
NO_PATTERN = json.dumps({"label_en": "no clear pattern", "label_ru": "нет явной закономерности",
                         "description_en": "Mixed.", "description_ru": "Смесь."},
                        ensure_ascii=False)  # fmt: skip


def test_vlm_naming_branch_against_a_local_server(workdir):
    """Last in this module: it changes the config (a VLM endpoint) and reruns the naming."""
    runs = sorted((workdir / "results" / "collages").glob("*/*/*/*"))
    with VLMServer() as server:
        for collages in runs:
            server.add_collages(collages)
            images = sorted(collages.glob("latent_*.jpg"))
            for path, answer in zip(images, (FENCED, SWAPPED, NO_PATTERN), strict=True):
                server.contents[hashlib.sha256(path.read_bytes()).hexdigest()] = answer
        server.fallback = "The images that show it:\n```json\n[1, 2]\n```"  # simulation grids
        config = small_config()
        config["interpret"] = {"vlm": {"base_url": server.base_url, "api_key_env": "TEST_VLM_KEY",
                                       "retries": 1, "backoff_factor": 0.01}}  # fmt: skip
        write_config(workdir, config)
        env = {"TEST_VLM_KEY": KEY}
        run = snakemake(workdir, "results/report.md", env=env)
        assert run.returncode == 0, run.stderr[-4000:]
        prompts = [r["body"]["messages"][0]["content"][0]["text"] for r in server.requests]
        naming = [p for p in prompts if p.startswith("The image is a grid of the images")]
        assert len(naming) == 3 * len(runs)  # one request per collage, no retry
        simulated = len(prompts) - len(naming)  # one per collaged latent that could be scored
        assert all(r["headers"]["Authorization"] == f"Bearer {KEY}" for r in server.requests)
        rerun = snakemake(workdir, "results/report.md", "--forcerun", "interpret_vlm", env=env)
        assert rerun.returncode == 0, rerun.stderr[-4000:]
        # The forced rerun (and the cleaning it reruns) is answered from the cache.
        assert server.count == 3 * len(runs) + simulated
    for collages in runs:
        rel = collages.relative_to(workdir / "results" / "collages")
        interpret = workdir / "results" / "interpret" / rel
        summary = json.loads((interpret / "interpretations.json").read_text())
        assert summary["by_source"]["vlm"] == 1, summary
        assert summary["by_flag"].get("vlm_swapped") == 1, summary
        assert summary["by_flag"].get("vlm_no_pattern") == 1, summary
        simulation = summary["simulation"]
        assert simulation["skipped_reason"] is None and simulation["malformed"] == [], simulation
        assert simulation["requests"] == 0 and simulation["cached"] == simulation["n_scored"]
        scored = pl.read_csv(interpret / "simulation.csv").drop_nulls("accuracy")
        assert (scored["predicted"] == "[1, 2]").all() and len(scored) == simulation["n_scored"]
        chosen = pl.read_csv(interpret / "interpretations.csv")
        assert "red shapes" in chosen.filter(pl.col("source") == "vlm")["label_en"].to_list()
    report = (workdir / "results" / "report.md").read_text()
    assert "red shapes" in report and "красные фигуры" in report
    assert "VLM simulation accuracy / F1" in report
    for folder in ("results", "logs", "benchmarks", ".snakemake", "cache"):
        for path in (workdir / folder).rglob("*"):
            if path.is_file():
                assert KEY.encode() not in path.read_bytes(), path
