"""The report and the results table from the files their rules declare, in seconds."""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path

import polars as pl
import pytest
from PIL import Image

from clipsae.report.document import Extraction, ReportInputs, write_report
from clipsae.report.figures import (
    l0_fvu_points,
    plot_accuracy_bars,
    plot_l0_vs_delta_accuracy,
    plot_l0_vs_fvu,
)
from clipsae.report.runs import bind_runs
from clipsae.report.sections import SECTIONS
from clipsae.report.table import COLUMNS, SpliceFile, results_table

RUNS = [
    {"model": "tiny", "layer": "final", "dataset": "shapes", "sae": "topk"},
    {"model": "tiny", "layer": "block2", "dataset": "shapes", "sae": "topk"},
]


TABLE_ROLES = ("recon", "zeroshot", "cfg", "extras")
SPLICE = {"n": 40, "n_classes": 6, "accuracy_clip": 0.9, "accuracy_sae": 0.7,
          "delta_accuracy": -0.2, "top5_clip": 1.0, "top5_sae": 0.95, "agreement": 0.7,
          "kl_clip_to_sae": 0.5, "logit_scale": 100.0, "l0": 5.5, "cosine": 0.8,
          "n_concepts": 58, "l1": 0.15, "method": "splice", "seed": 0,
          "n_test_split": 100}  # fmt: skip


def _write_json(path: Path, data: dict) -> str:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(data))
    return str(path)


def _run_files(root: Path, i: int) -> dict[str, str]:
    """One run's inputs, at deliberately unconventional paths: the report must not guess them."""
    d = root / f"run{i}"
    recon = {"l0": 8.0 + i, "mse": 0.01, "l1": 3.0, "r2": 0.9, "fvu": 0.1 - 0.01 * i,
             "cosine": 0.97, "dead_frac": 0.02}  # fmt: skip
    zeroshot = {"accuracy_clip": 0.9, "accuracy_sae": 0.85, "delta_accuracy": -0.05,
                "n_classes": 6, "n": 100, "method": "spliced", "kl_clip_to_sae": 0.1}  # fmt: skip
    collages = d / "pics"
    collages.mkdir(parents=True)
    for latent in (3, 7):
        Image.new("RGB", (8, 8)).save(collages / f"latent_{latent:05d}.jpg")
    pl.DataFrame({"latent": [3, 7, 9], "frequency": [0.5, 0.25, 0.0]}).write_parquet(
        d / "stats.parquet"
    )
    pl.DataFrame({"latent": [3, 7, 9], "top_en": ["red", "circle", "x"],
                  "top_ru": ["красный", "круг", "х"], "score": [0.3, 0.2, 0.1]}).write_csv(
        d / "names.csv"
    )  # fmt: skip
    reason = "environment variable OPENROUTER_API_KEY is not set"
    vlm = {"model": "m", "requests": 0, "cached": 0, "counts": {"skipped": 2},
           "skipped_reason": reason, "unnamed": [3, 7]}  # fmt: skip
    pl.DataFrame({"latent": ["3", "7"], "label_en": ["red", ""], "label_ru": ["красный", ""],
                  "status": ["ok", "skipped"]}).write_csv(d / "vlm.csv")  # fmt: skip
    pl.DataFrame({"latent": [3, 7, 9], "label_en": ["red", "circle", "x"],
                  "label_ru": ["красный", "круг", "х"], "description_en": ["", "", ""],
                  "description_ru": ["", "", ""], "source": ["vlm", "vocabulary", "vocabulary"],
                  "score": [0.97, 0.61, None] if i == 0 else [None] * 3,
                  "flags": ["", "", ""]}).write_csv(
        d / "interpretations.csv"
    )  # fmt: skip
    detection = {"n_scored": 2, "median_auroc": 0.79, "median_shuffled": 0.5}
    simulation = [
        {"n_scored": 2, "median_accuracy": 0.9, "median_f1": 0.8, "median_base_rate": 0.55,
         "malformed": [7], "skipped_reason": None},
        {"n_scored": 0, "median_accuracy": None, "median_f1": None, "median_base_rate": None,
         "malformed": [], "skipped_reason": "environment variable OPENROUTER_API_KEY is not set"},
    ][i]  # fmt: skip
    summary = {"by_source": {"vlm": 1, "vocabulary": 2, "manual": 0}, "by_flag": {"no_pattern": 1},
               "n_names": 3, "shared_names": [], "agreement": {"n": 1, "median": 0.8, "mean": 0.8},
               "detection": detection, "simulation": simulation}  # fmt: skip
    explore = d / "explore"
    explore.mkdir()
    pl.DataFrame({"cluster": [1, 0], "size": [60, 40], "top_latents": [[3, 9], [7]],
                  "top_names": [["red", ""], ["circle"]],
                  "member_ids": [["test-1", "test-2"], ["test-3"]]}).write_parquet(
        explore / "clusters.parquet"
    )  # fmt: skip
    examples = {"explain": {"row": 2, "id": "test-2", "latents": [
                    {"latent": 3, "activation": 1.5, "label_en": "red", "label_ru": "красный"}]},
                "search": {"text": "circle", "latents": [
                    {"latent": 7, "cosine": 0.8, "label_en": "circle", "label_ru": "круг",
                     "images": [{"row": 3, "id": "test-3", "activation": 2.0}]}]},
                "clusters": {"n_rows": 100, "n_clusters": 2}}  # fmt: skip
    for image in ("clusters.jpg", "examples.jpg"):
        Image.new("RGB", (8, 8)).save(explore / image)
    probe = {"probe_accuracy_clip": 0.95 - 0.1 * i, "probe_accuracy_sae": 0.9 - 0.1 * i,
             "probe_agreement": 0.9, "probe_kl_clip_to_sae": 0.05}  # fmt: skip
    sweep = [{"k": k, "l0": float(k), "fvu": 0.4 / k + 0.01 * i, "cosine": 0.9, "dead_frac": 0.0}
             for k in (4, 8, 16)]  # fmt: skip
    ms = {"n_images": 50, "ms_sae": 0.6, "ms_sae_scored": 900, "ms_clip": 0.4,
          "ms_clip_scored": 128, "seed": 0, "similarity": "final"}  # fmt: skip
    extras = {"probe": probe, "sweep": sweep, "monosemanticity": ms}
    return {
        "extras": _write_json(d / "x.json", extras),
        "explore_clusters": str(explore / "clusters.parquet"),
        "explore_clusters_image": str(explore / "clusters.jpg"),
        "explore_examples": _write_json(explore / "examples.json", examples),
        "explore_examples_image": str(explore / "examples.jpg"),
        "vlm_names": str(d / "vlm.csv"),
        "interpretations": str(d / "interpretations.csv"),
        "interpretations_summary": _write_json(d / "interpretations.json", summary),
        "recon": _write_json(d / "r.json", recon),
        "zeroshot": _write_json(d / "z.json", zeroshot),
        "cfg": _write_json(d / "c.json", {"d_sae": 1024, "arch": "topk", "k": 8}),
        "stats": str(d / "stats.parquet"),
        "collages": str(collages),
        "names": str(d / "names.csv"),
        "vlm": _write_json(d / "vlm.json", vlm),
    }


@pytest.fixture
def inputs(tmp_path: Path) -> ReportInputs:
    files = [_run_files(tmp_path / "in", i) for i in range(len(RUNS))]
    per_run = {role: [f[role] for f in files] for role in files[0]}
    table = tmp_path / "out" / "tables" / "results.parquet"
    splice = [SpliceFile(model="tiny", dataset="shapes", path=Path(_write_json(
        tmp_path / "in" / "splice.json", SPLICE)))]  # fmt: skip
    results_table(
        runs=bind_runs(RUNS, {r: per_run[r] for r in TABLE_ROLES}),
        out_parquet=table,
        out_md=table.with_suffix(".md"),
        splice=splice,
    )
    acts = tmp_path / "in" / "acts"
    meta = {"n_rows": 100, "extra": {"skipped": {"truncated": 2}}}
    _write_json(acts / "meta.json", meta)
    truth = _write_json(tmp_path / "in" / "gt.json", {"methods": {
        "sae": {"recovered_fraction": 0.9, "recovered_by_factor": {"color": 1.0, "shape": 0.8},
                "mean_f1": 0.9, "mean_auroc": 0.99, "naming_top1_recovered": 0.75,
                "naming_top3_recovered": 1.0, "latents": {"monosemantic": 40, "mixed": 10}},
        "random": {"recovered_fraction": 0.0, "recovered_by_factor": {"color": 0.0},
                   "mean_f1": 0.2, "mean_auroc": 0.6}}})  # fmt: skip
    steering = _write_json(tmp_path / "in" / "steer.json", {"percentile": 99, "settings": {
        "x2": {"n_latents": 5, "flip_to_target": 0.8, "target_removed": 0.0, "changed": 0.7,
               "other_changed": 0.05}}})  # fmt: skip
    alignment = _write_json(tmp_path / "in" / "alignment.json", {
        "decoder": {"n_matched": 1024, "mean_cosine": 0.81, "frac_above": 0.42, "threshold": 0.9},
        "encoder": {"n_matched": 1024, "mean_cosine": 0.77, "frac_above": 0.3, "threshold": 0.9},
        "random": {"n_matched": 1024, "mean_cosine": 0.31, "frac_above": 0.0, "threshold": 0.9},
        "d_sae": 1024, "seeds": [1, 0], "saes": ["topk-seed1", "topk"]})  # fmt: skip
    return ReportInputs(
        table=table,
        extras=bind_runs(RUNS, {"extras": per_run["extras"]}),
        splice=splice,
        alignments=bind_runs([{**RUNS[0], "sae": "topk-seed1"}], {"alignment": [alignment]}),
        truth=bind_runs(RUNS[:1], {"ground_truth": [truth]}),
        steering=bind_runs(RUNS[:1], {"steering": [steering]}),
        runs=bind_runs(RUNS, {r: per_run[r] for r in per_run if r not in TABLE_ROLES}),
        extractions=[
            Extraction(model="tiny", dataset="shapes", split="test", layer="final", directory=acts)
        ],
        builds={},
        out_md=tmp_path / "out" / "report.md",
        figures_dir=tmp_path / "out" / "figures",
    )


def test_results_table_has_one_clip_row_per_model_and_dataset(inputs):
    df = pl.read_parquet(inputs.table)
    assert df.columns == COLUMNS
    # One CLIP row for tiny on shapes, however many runs were evaluated there, then SpLiCE, then
    # the SAE rows by layer.
    assert df.select("variant", "layer").rows() == [
        ("CLIP", None), ("SpLiCE", "final"), ("CLIP+SAE", "block2"), ("CLIP+SAE", "final")
    ]  # fmt: skip
    clip, splice, block2, final = df.iter_rows(named=True)
    assert (clip["accuracy"], clip["top5_accuracy"], clip["sae"]) == (0.9, None, None)
    assert clip["probe_accuracy"] == pytest.approx(0.95)  # the final run's probe on CLIP
    assert (final["FVU"], block2["FVU"]) == pytest.approx((0.1, 0.09))
    assert (final["probe_accuracy"], final["KL"], final["arch"]) == (
        pytest.approx(0.9),
        0.1,
        "topk",
    )
    assert "probe on CLIP block2: 0.8500" in block2["notes"]
    assert (splice["accuracy"], splice["L0"], splice["dict_size"]) == (0.7, 5.5, 58)
    assert splice["delta_accuracy"] == -0.2 and splice["notes"] == "58 concepts, l1=0.15, n=40"
    # The Markdown: every column, each in its fixed format.
    md = inputs.table.with_suffix(".md").read_text()
    assert md.splitlines()[0] == "| " + " | ".join(COLUMNS) + " |"
    assert (
        "| shapes | tiny | CLIP+SAE | final | topk | topk | shapes | 0.8500 "
        "| k=8, spliced zero-shot | 1024 | 8.00 | 1.000e-02 | 3.000 | 0.9000 | 0.1000 | 0.9700 "
        "| 2.00 |  | -0.0500 | 0.9000 | 1.000e-01 |"
    ) in md


def test_the_table_rows_and_their_order_do_not_depend_on_the_order_of_the_runs(inputs, tmp_path):
    files = [_run_files(tmp_path / "again", i) for i in range(len(RUNS))]
    out = tmp_path / "reversed.parquet"
    results_table(
        runs=bind_runs(RUNS[::-1], {r: [f[r] for f in files][::-1] for r in TABLE_ROLES}),
        out_parquet=out,
        out_md=out.with_suffix(".md"),
        splice=inputs.splice,
    )
    first = inputs.table.with_suffix(".md").read_text()
    assert out.with_suffix(".md").read_text() == first


def test_the_figures_draw_every_sae_sweep_and_frontier(inputs, tmp_path):
    table = pl.read_parquet(inputs.table)
    points = l0_fvu_points(table, inputs.extras)
    # Per run: the trained SAE and its three sweep points, in the run's own panel.
    assert points.group_by("panel", "kind").len().sort("panel", "kind").rows() == [
        ("tiny / block2 / shapes", "sweep", 3), ("tiny / block2 / shapes", "trained", 1),
        ("tiny / final / shapes", "sweep", 3), ("tiny / final / shapes", "trained", 1),
    ]  # fmt: skip
    fig = plot_l0_vs_fvu(points, tmp_path / "fvu.png")
    assert (tmp_path / "fvu.png").stat().st_size > 1000
    assert len(fig.axes) == 2
    for ax in fig.axes:
        gids = sorted(line.get_gid() for line in ax.get_lines())
        assert gids == ["arch:topk", "pareto"]
        # The trained point (L0 8 or 9, FVU 0.1 or 0.09) is beaten by the k=16 sweep point, so
        # the frontier runs through the sweep alone: k = 4, 8, 16.
        front = next(line for line in ax.get_lines() if line.get_gid() == "pareto")
        assert list(front.get_xdata()) == [4.0, 8.0, 16.0]
        sweep = [c for c in ax.collections if c.get_gid() == "sweep"]
        assert len(sweep[0].get_offsets()) == 3
        assert [c.get_label() for c in ax.collections if c.get_gid() == "trained"] == ["topk"]
    # A dense sweep end far above the rest sits on the axis' ceiling, not on a stretched axis.
    dense = pl.DataFrame([{"panel": "tiny / final / shapes", "arch": "topk", "sae": "topk",
                           "kind": "sweep", "size": "k=64", "L0": 64.0, "FVU": 40.0}],
                         schema=points.schema)  # fmt: skip
    fig = plot_l0_vs_fvu(pl.concat([points, dense]), tmp_path / "fvu2.png")
    (ax,) = [ax for ax in fig.axes if ax.get_title() == "tiny / final / shapes"]
    assert ax.get_ylim() == (0, 1.05)
    (offscale,) = [c for c in ax.collections if c.get_gid() == "offscale"]
    assert offscale.get_offsets().tolist() == [[64.0, 1.05]]
    bars = plot_accuracy_bars(table, tmp_path / "acc.png")
    heights = [patch.get_width() for patch in bars.axes[0].patches]
    assert heights == pytest.approx([0.9, 0.7, 0.85, 0.85])  # CLIP, SpLiCE, two CLIP+SAE rows
    delta = plot_l0_vs_delta_accuracy(table, tmp_path / "delta.png")
    offsets = {c.get_gid(): c.get_offsets().tolist() for c in delta.axes[0].collections}
    assert offsets == {"topk:shapes": [[9.0, -0.05], [8.0, -0.05]],
                       "SpLiCE:shapes": [[5.5, -0.2]]}  # fmt: skip


def test_report_has_every_section_and_reads_only_declared_files(inputs):
    write_report(inputs, SECTIONS)
    text = inputs.out_md.read_text(encoding="utf-8")
    for heading in ("## Results", "## Data", "## Sparsity vs reconstruction", "## VLM naming",
                    "## Names: scores and cleaning",
                    "## Exploring the codes: clusters, explain, search", "## Monosemanticity",
                    "## SpLiCE baseline", "## Seed-to-seed alignment",
                    "## Zero-shot accuracy: CLIP vs CLIP+SAE"):  # fmt: skip
        assert heading in text
    assert "| shapes | tiny | final | test | 100 | truncated: 2 |" in text
    # Collage links are relative to the report and point at the declared collage folders.
    assert "![latent 3](../in/run0/pics/latent_00003.jpg)" in text
    # Collaged latents, best-scored first, with the names they were chosen from.
    rows = [line for line in text.splitlines() if line.startswith(("| 3 |", "| 7 |"))]
    assert rows[0].startswith(
        "| 3 | 0.500 | red | красный | vlm | 0.97 | red / красный | red / красный"
    )
    assert rows[1].startswith(
        "| 7 | 0.250 | circle | круг | vocabulary | 0.61 | circle / круг | (skipped)"
    )
    assert "| 0.79 | 0.5 | 0.70 / 0.79 / 0.88 | `      █  █` |" in text
    assert "no_pattern: 1" in text
    assert "| 0.8 | 0.90 / 0.80 (n=2, base rate 0.55, 1 malformed) |" in text
    assert "| skipped: environment variable OPENROUTER_API_KEY is not set |" in text
    # A run whose names could not be scored (too few images) still reports, with blank scores.
    assert "| topk on tiny / block2 / shapes | 2 | 0.79 | 0.5 |  |  |" in text
    truth_row = (
        "| topk on tiny / final / shapes | sae | 90% | color 100%, shape 80% | 0.9 | 0.99 "
        "| 75% / 100% | monosemantic: 40, mixed: 10 |"
    )
    assert truth_row in text
    assert "| topk on tiny / final / shapes | x2 | 5 | 0.8 | 0 | 0.7 | 0.05 |" in text
    assert "environment variable OPENROUTER_API_KEY is not set" in text
    # Explore: clusters largest first with their named top latents, explain and search examples.
    assert "k-means of the SAE codes of 100 test images into 2 clusters" in text
    assert "| 1 | 60 | 3 (red), 9 | test-1, test-2 |" in text
    assert "![clusters](../in/run0/explore/clusters.jpg)" in text
    assert "`clipsae explain test-2`" in text and "| 3 | 1.5 | red | красный |" in text
    assert '`clipsae search "circle"`' in text and "| 7 | 0.8 | circle | круг | test-3 |" in text
    assert "![explain and search](../in/run1/explore/examples.jpg)" in text
    for figure in ("l0_vs_fvu.png", "accuracy.png", "l0_vs_delta_accuracy.png"):
        assert (inputs.figures_dir / figure).stat().st_size > 1000
        assert f"](figures/{figure})" in text
    assert "| topk on tiny / final / shapes | 50 | 0.6 | 900 | 0.4 | 128 | 1.5 |" in text
    assert (
        "| tiny | shapes | SpLiCE | 40 | 0.9 | 0.7 | -0.2 | 5.5 | 0.8 | 58 concepts, l1=0.15 |"
        in text
    )
    assert "| tiny | shapes | SAE topk | " in text
    assert (
        "| topk-seed1 on tiny / final / shapes | topk | 1 / 0 | 1024 | 0.81 | 42.0% | 0.77 | 30.0% "
        "| 0.31 |"
    ) in text


def test_a_missing_role_names_the_run_and_the_role(inputs):
    with pytest.raises(KeyError, match="has no 'zeroshot' input"):
        inputs.runs[0]["zeroshot"]
    with pytest.raises(ValueError, match="input 'stats' has 1 files for 2 runs"):
        bind_runs(RUNS, {"stats": ["a"]})


def test_published_figures_stand_beside_ours_per_model_and_layer(inputs):
    figures = {"shapes": {"accuracy_sae": 0.8, "L0": 10, "accuracy_clip": 0.95},
               "colors": {"FVU": 0.2}}  # fmt: skip
    published = {"topk": {"source": "a paper", "note": "our reading", "on": figures}}
    write_report(dataclasses.replace(inputs, published=published), SECTIONS)
    text = inputs.out_md.read_text(encoding="utf-8")
    assert "## Published vs ours" in text
    assert "| topk | shapes | accuracy_sae | 0.8 | 0.85 | tiny / final / shapes |" in text
    assert "| topk | shapes | L0 | 10 | 8 | tiny / final / shapes |" in text
    assert "| topk | shapes | L0 | 10 | 9 | tiny / block2 / shapes |" in text
    # CLIP's figure beside the one CLIP row of each model the SAE runs on.
    assert "| topk | shapes | accuracy_clip | 0.95 | 0.9 | tiny (CLIP) |" in text
    assert "| topk | colors | FVU | 0.2 |  |  |" in text  # not evaluated there: left blank
    assert "- **topk**: a paper; our reading" in text
    write_report(inputs, SECTIONS)
    assert "## Published vs ours" not in inputs.out_md.read_text(encoding="utf-8")


def test_an_evaluation_on_another_dataset_is_its_own_row(inputs, tmp_path):
    files = _run_files(tmp_path / "other", 0)
    run = {**RUNS[0], "evalset": "colors"}
    table = tmp_path / "t.parquet"
    results_table(
        runs=bind_runs([run], {r: [files[r]] for r in TABLE_ROLES}),
        out_parquet=table,
        out_md=table.with_suffix(".md"),
    )
    df = pl.read_parquet(table)
    assert df.select("dataset", "train").rows() == [("colors", None), ("colors", "shapes")]


def test_the_extras_section_has_a_probe_row_per_evaluation_and_the_sweep(inputs, tmp_path):
    probe = {"probe_accuracy_clip": 0.9, "probe_accuracy_sae": 0.8, "probe_agreement": 0.85,
             "probe_kl_clip_to_sae": 0.2}  # fmt: skip
    point = {"l0": 4.0, "fvu": 0.3, "cosine": 0.9, "dead_frac": 0.1}
    final = {"probe": probe, "baselines": {"error_only": {"accuracy_sae": 0.1},
             "mean_ablated": {"accuracy_sae": 0.2}}, "sweep": [{"k": 4, **point}]}  # fmt: skip
    inner = {"probe": probe, "baselines_skipped": "block2: not run", "sweep": []}
    files = [_write_json(tmp_path / f"x{i}.json", e) for i, e in enumerate((final, inner))]
    runs = [{**run, "evalset": "colors"} for run in RUNS]
    extras = bind_runs(runs, {"extras": files})
    write_report(dataclasses.replace(inputs, extras=extras), SECTIONS)
    text = inputs.out_md.read_text(encoding="utf-8")
    title = "topk on tiny / final / shapes, evaluated on colors"
    assert f"| {title} | 0.9 | 0.8 | 0.85 | 0.2 | 0.1 | 0.2 |" in text
    assert (
        "| topk on tiny / block2 / shapes, evaluated on colors | 0.9 | 0.8 | 0.85 | 0.2 |  |  |"
        in text
    )
    assert "- topk on tiny / block2 / shapes, evaluated on colors: block2: not run" in text
    assert f"| {title} | k=4 | 4 | 0.3 | 0.9 | 0.1 |" in text


def test_models_section_prints_a_built_and_a_shipped_record(inputs, tmp_path):
    base = {"arch": "clipsae-tiny-vit", "config": {"steps": 2400}, "initial_loss": 4.9,
            "final_loss": 1.8}  # fmt: skip
    built = _write_json(tmp_path / "in" / "built.json", {
        **base, "heldout_zeroshot": {"n": 400, "color": 0.95, "shape": 0.49}})  # fmt: skip
    shipped = _write_json(tmp_path / "in" / "shipped.json", {**base, "shipped": {
        "dtype": "float16", "sha256": "ab" * 32, "rebuild": "snakemake X",
        "heldout_zeroshot": {"n": 400, "color": 0.935, "shape": 0.5}}})  # fmt: skip
    write_report(dataclasses.replace(inputs, builds={"a": built, "b": shipped}), SECTIONS)
    text = inputs.out_md.read_text()
    assert (
        "- `a` (clipsae-tiny-vit): trained from scratch on generated captions, 2400 steps" in text
    )
    assert "held-out zero-shot on 400 generated images: color 0.950, shape 0.490" in text
    assert (
        "- `b` (clipsae-tiny-vit): the package's shipped weights (float16, sha256 `abababababab…`)"
        in text
    )
    assert "color 0.935, shape 0.500. Rebuilt by `snakemake X`" in text
