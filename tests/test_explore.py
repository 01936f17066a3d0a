"""explain, search, similar and clusters on a tiny run laid out as the workflow lays it out.

The fixture is a whole run in a few seconds: the embedded tiny ViT with random weights (saved as
a built model), 40 generated test images extracted through ``extract_activations``, a TopK SAE
built directly (one latent's decoder row planted on a text embedding), the features step and a
names CSV. Every expectation is computed independently of the code under test.
"""

from __future__ import annotations

import json
import re

import numpy as np
import polars as pl
import pytest
import torch
import yaml
from configs import weak_sampling
from PIL import Image
from safetensors.torch import save_file
from sklearn.metrics import adjusted_rand_score

from clipsae.activations.extract import extract_activations, image_activations
from clipsae.activations.shards import ActivationStore
from clipsae.cli import main
from clipsae.data import build_dataset, write_index
from clipsae.explore.clusters import cluster_codes
from clipsae.explore.latents import explain, nearest_directions
from clipsae.explore.run import Run, read_names
from clipsae.interpret.collage import collage_size, weak_tile_origin
from clipsae.interpret.features import TOP_FILE, WEAK_FILE
from clipsae.interpret.naming import write_names_csv
from clipsae.models.clip import load_clip
from clipsae.models.text import encode_texts
from clipsae.models.weights import built_weights
from clipsae.sae import TopKConfig, build_sae, load_sae, save_sae
from clipsae.steps.collages import collages
from clipsae.steps.explore import ExploreSettings, explore_run
from clipsae.steps.features import encode_features

ARCH = "clipsae-tiny-vit"
PLANTED_TEXT = "a red circle on a navy background"
DATASET = {"source": "synthetic", "n_train": 0, "n_test": 40, "seed": 1, "noise": 2.0}
D_SAE, K = 32, 4


@pytest.fixture(scope="module")
def run(tmp_path_factory) -> dict:
    root = tmp_path_factory.mktemp("explore")
    results = root / "results"
    config = root / "config.yaml"
    config.write_text(yaml.safe_dump({"datasets": {"shapes": DATASET}}))
    dataset = build_dataset("shapes", DATASET)
    write_index(dataset, results / "data" / "shapes")

    torch.manual_seed(0)
    weights = built_weights(results / "models", "tiny")
    weights.parent.mkdir(parents=True)
    random_model = load_clip(ARCH, "none", device="cpu").model
    save_file({k: v.contiguous() for k, v in random_model.state_dict().items()}, str(weights))
    clip = load_clip(ARCH, str(weights), device="cpu")

    the_run = Run(results, "tiny", "final", "shapes", "topk8-x8")
    acts_dir = the_run.activations("test")
    extra = {"pretrained": "build", "dataset": "shapes", "split": "test"}
    extract_activations(clip, dataset, dataset.records(), "final", acts_dir, 16, extra=extra)
    acts = ActivationStore(acts_dir).load_all()

    sae = build_sae(TopKConfig(d_in=acts.shape[1], d_sae=D_SAE, k=K),
                    torch.Generator().manual_seed(0))  # fmt: skip
    with torch.no_grad():
        sae.b_dec.copy_(torch.from_numpy(acts.mean(axis=0)))  # codes vary between images
        codes = sae.encode(torch.from_numpy(acts)).numpy()
    fires = (codes > 0).sum(axis=0)
    # Plant the text on a live latent that is not the most frequent: W_dec does not change codes.
    planted = int(np.flatnonzero((fires > 0) & (fires < fires.max()))[0])
    text = encode_texts(clip, [PLANTED_TEXT])[0]
    with torch.no_grad():
        sae.W_dec[planted] = torch.from_numpy(text)
    save_sae(sae, the_run.sae_dir)
    encode_features(sae_dir=the_run.sae_dir, acts_dir=acts_dir, out_dir=the_run.features_dir,
                    top_k=3, weak=weak_sampling(), device="cpu")  # fmt: skip

    names = pl.DataFrame(
        {
            "latent": np.arange(D_SAE),
            "label_en": [f"concept {i}" for i in range(D_SAE)],
            "label_ru": [f"понятие {i}" for i in range(D_SAE)],
            "score": np.zeros(D_SAE),
        }
    )
    write_names_csv(names, results / "interpret" / "tiny/final/shapes/topk8-x8" / "vocab.csv")
    return {"run": the_run, "config": config, "acts": acts, "codes": codes, "fires": fires,
            "planted": planted, "dataset": dataset, "root": root}  # fmt: skip


def _args(fixture: dict, *extra: str) -> list[str]:
    the_run = fixture["run"]
    return [*extra, "--results", str(the_run.results), "--model", "tiny", "--layer", "final",
            "--dataset", "shapes", "--sae", "topk8-x8", "--config", str(fixture["config"]),
            "--device", "cpu"]  # fmt: skip


def _table(text: str) -> list[list[str]]:
    """Rows of the first printed table (header included), split on runs of 2+ spaces."""
    block = text.strip().split("\n\n")[0]
    return [re.split(r"\s{2,}", line.strip()) for line in block.splitlines()]


def _busy_row(fixture: dict) -> int:
    """A test row whose codes are not all zero (a silent image has no nearest neighbour)."""
    return int(np.flatnonzero((fixture["codes"] > 0).sum(axis=1) == K)[3])


def test_explain_top_latent_is_the_argmax_of_the_codes(run, capsys) -> None:
    row = _busy_row(run)
    assert main(["explain", f"test-{row:06d}", *_args(run, "--top-n", "3")]) == 0
    table = _table(capsys.readouterr().out)
    assert table[0] == ["latent", "activation", "label_en", "label_ru"]
    expected = np.argsort(-run["codes"][row], kind="stable")[:3]
    assert [int(r[0]) for r in table[1:]] == expected.tolist()
    np.testing.assert_allclose(float(table[1][1]), run["codes"][row].max(), rtol=1e-3)
    assert table[1][2:] == [f"concept {expected[0]}", f"понятие {expected[0]}"]


def test_explain_reads_an_image_file_as_extraction_does(run, tmp_path) -> None:
    row = _busy_row(run)
    image = run["dataset"].open_image(run["dataset"].records()[row])
    image.save(tmp_path / "query.png")  # lossless: the same pixels as the extracted image
    the_run = run["run"]
    clip = the_run.open_clip("cpu")
    (activation,) = image_activations(clip, "final", [Image.open(tmp_path / "query.png")])
    np.testing.assert_allclose(activation, run["acts"][row], atol=1e-4)
    names = read_names(the_run.names_file())
    table = explain(load_sae(the_run.sae_dir), activation, top_n=K + 5, names=names)
    assert len(table) == K, "a TopK SAE has exactly k active latents"
    assert table["latent"][0] == int(np.argmax(run["codes"][row]))
    assert table["label_ru"][0] == f"понятие {table['latent'][0]}"


def test_image_activations_match_extraction_at_a_block_layer(run, tmp_path) -> None:
    clip = run["run"].open_clip("cpu")
    records = run["dataset"].records()[:5]
    extract_activations(clip, run["dataset"], records, "block1", tmp_path / "block1", 4)
    stored = ActivationStore(tmp_path / "block1").load_all()
    images = [run["dataset"].open_image(record) for record in records]
    activations = image_activations(clip, "block1", images)
    assert activations.shape == stored.shape == (5, 128)
    np.testing.assert_allclose(activations, stored, atol=1e-5)


def test_search_finds_the_planted_latent_and_its_top_images(run, capsys) -> None:
    assert main(["search", PLANTED_TEXT, *_args(run, "--top-n", "3", "--images", "2")]) == 0
    out = capsys.readouterr().out
    table = _table(out)
    assert table[0] == ["latent", "cosine", "label_en", "label_ru"]
    assert int(table[1][0]) == run["planted"]
    assert float(table[1][1]) == pytest.approx(1.0, abs=1e-4)
    images = _table(out.strip().split("\n\n")[1])
    assert images[0] == ["latent", "id", "activation", "source"]
    planted = [r for r in images[1:] if int(r[0]) == run["planted"]]
    column = run["codes"][:, run["planted"]]
    expected = np.argsort(-column, kind="stable")[: min(2, int((column > 0).sum()))]
    assert [r[1] for r in planted] == [f"test-{i:06d}" for i in expected]
    assert [r[3] for r in planted] == [f"synthetic:test:{i}" for i in expected]


def test_search_skips_dead_latents_only_when_told_which_are_live() -> None:
    directions = np.eye(4, dtype=np.float32)
    query = np.array([0.1, 0.0, 1.0, 0.2], dtype=np.float32)
    assert nearest_directions(query, directions, top_n=2)["latent"].to_list() == [2, 3]
    live = np.array([True, True, False, True])
    found = nearest_directions(query, directions, top_n=2, live=live)
    assert found["latent"].to_list() == [3, 0]
    np.testing.assert_allclose(found["cosine"][0], 0.2 / np.linalg.norm(query), rtol=1e-6)


def test_similar_returns_the_query_image_first(run, capsys) -> None:
    row = _busy_row(run)
    assert main(["similar", f"test-{row:06d}", *_args(run, "--top-n", "5")]) == 0
    table = _table(capsys.readouterr().out)
    assert table[0] == ["id", "cosine", "source"]
    assert table[1][0] == f"test-{row:06d}"
    assert float(table[1][1]) == pytest.approx(1.0, abs=1e-4)
    unit = run["codes"] / np.maximum(np.linalg.norm(run["codes"], axis=1, keepdims=True), 1e-12)
    cosine = unit @ unit[row]
    expected = np.argsort(-cosine, kind="stable")[:5]
    assert sorted(r[0] for r in table[1:]) == sorted(f"test-{i:06d}" for i in expected)


def test_kmeans_recovers_planted_clusters() -> None:
    rng = np.random.default_rng(0)
    sizes, supports = [50, 30, 20], [[0, 1, 2], [5, 6], [9, 10, 11]]
    codes, truth = [], []
    for cluster, (n, support) in enumerate(zip(sizes, supports, strict=True)):
        block = np.zeros((n, 16), dtype=np.float32)
        block[:, support] = rng.uniform(0.5, 1.5, size=(n, len(support)))
        block[:, 14] = rng.uniform(0, 0.2, size=n)  # a weak latent every image shares
        codes.append(block)
        truth += [cluster] * n
    clusters = cluster_codes(np.concatenate(codes), n_clusters=3, n_members=4, n_latents=2)
    assert adjusted_rand_score(truth, clusters.labels) == pytest.approx(1.0)
    table = clusters.table
    assert table["size"].to_list() == sizes, "largest first"
    starts = np.cumsum([0, *sizes])
    for row in table.iter_rows(named=True):
        planted = next(i for i, n in enumerate(sizes) if n == row["size"])
        assert all(starts[planted] <= m < starts[planted + 1] for m in row["members"])
        assert len(row["members"]) == 4 and set(row["top_latents"]) <= set(supports[planted])
    with pytest.raises(ValueError, match="n_clusters"):
        cluster_codes(np.concatenate(codes), n_clusters=101)


def test_clusters_command_writes_one_collage_per_cluster(run, capsys, tmp_path) -> None:
    out = tmp_path / "clusters"
    args = _args(run, "--n-clusters", "3", "--members", "4", "--out", str(out))
    assert main(["clusters", *args]) == 0
    table = _table(capsys.readouterr().out)
    assert table[0] == ["cluster", "size", "members", "top_latents", "names"]
    assert sum(int(r[1]) for r in table[1:]) == len(run["acts"])
    paths = sorted(out.iterdir())
    assert [p.name for p in paths] == ["cluster_000.jpg", "cluster_001.jpg", "cluster_002.jpg"]
    members = {int(r[0]): r[2].split(", ") for r in table[1:]}
    assert all(0 < len(m) <= 4 for m in members.values())
    with Image.open(paths[0]) as image:
        assert image.size == collage_size(len(members[0]), 96, 3)


def test_collage_contrast_row_shows_weakly_activating_images(run, tmp_path) -> None:
    the_run = run["run"]
    top = pl.read_parquet(the_run.features_dir / TOP_FILE)
    weak = pl.read_parquet(the_run.features_dir / WEAK_FILE)
    latent = int(np.argmax(run["fires"]))
    weak_rows = weak.filter(pl.col("latent") == latent).sort("rank")
    column = run["codes"][:, latent]
    assert len(weak_rows) == 3
    assert (weak_rows["activation"].to_numpy() > 0).all()
    np.testing.assert_allclose(weak_rows["activation"], column[weak_rows["row"]], rtol=1e-5)
    assert weak_rows["activation"].max() <= np.quantile(column[column > 0], 0.5)
    assert set(weak_rows["row"]).isdisjoint(top.filter(pl.col("latent") == latent)["row"])

    out = tmp_path / "collages"
    collages(features_dir=the_run.features_dir, acts_dir=the_run.activations("test"),
             dataset_name="shapes", dataset_entry=DATASET, index_dir=the_run.index_dir,
             out_dir=out, n_latents=1, tile=48, latents=[run["planted"]])  # fmt: skip
    names = sorted(p.name for p in out.iterdir())
    assert names == sorted({f"latent_{run['planted']:05d}.jpg", f"latent_{latent:05d}.jpg"})
    with Image.open(out / f"latent_{latent:05d}.jpg") as image:
        assert image.size == collage_size(3, 48, 3, n_weak=3)
        pixels = np.asarray(image).astype(int)
    records = run["dataset"].records()
    for index, row in enumerate(weak_rows["row"]):
        x, y = weak_tile_origin(index, 3, 48, 3)
        shown = pixels[y + 24 : y + 48, x : x + 48]  # lower half: clear of the value label
        expected = np.asarray(run["dataset"].open_image(records[row]).resize((48, 48)))[24:]
        assert np.abs(shown.mean(axis=(0, 1)) - expected.mean(axis=(0, 1))).max() < 12


def test_explore_step_writes_clusters_and_explain_and_search_examples(run, tmp_path) -> None:
    the_run = run["run"]
    weights = built_weights(the_run.results / "models", "tiny")
    clip = load_clip(ARCH, str(weights), device="cpu")
    classes = tmp_path / "classes_shapes.npy"
    np.save(classes, encode_texts(clip, [PLANTED_TEXT]))
    pl.DataFrame({"label": [0], "name": [PLANTED_TEXT]}).write_parquet(
        classes.with_suffix(".parquet")
    )
    out = tmp_path / "explore"
    settings = ExploreSettings(
        n_clusters=3, n_members=4, top_n=3, images=2, max_rows=30, tile=32, seed=0
    )
    explore_run(sae_dir=the_run.sae_dir, acts_dir=the_run.activations("test"),
                features_dir=the_run.features_dir, names_csv=the_run.names_file(),
                classes_npy=classes, layer="final", model={"arch": ARCH, "pretrained": "build"},
                weights=weights, dataset_name="shapes", dataset_entry=DATASET,
                index_dir=the_run.index_dir, out_dir=out, settings=settings,
                device="cpu")  # fmt: skip

    clusters = pl.read_parquet(out / "clusters.parquet")
    assert clusters["size"].sum() == 30, "k-means on the 30 sampled rows"
    for row in clusters.iter_rows(named=True):
        assert 0 < len(row["members"]) <= 4
        assert row["member_ids"] == [f"test-{m:06d}" for m in row["members"]]
        assert row["top_names"] == [f"concept {lat}" for lat in row["top_latents"]]
    with Image.open(out / "clusters.jpg") as image:
        heights = [collage_size(len(m), 32, 4)[1] for m in clusters["members"]]
        assert image.size == (collage_size(4, 32, 4)[0], sum(heights))

    examples = json.loads((out / "examples.json").read_text(encoding="utf-8"))
    explained = examples["explain"]
    codes = run["codes"][explained["row"]]
    assert explained["id"] == f"test-{explained['row']:06d}"
    expected = np.argsort(-codes, kind="stable")[:3]
    assert [r["latent"] for r in explained["latents"]] == expected.tolist()
    np.testing.assert_allclose(explained["latents"][0]["activation"], codes.max(), rtol=1e-4)
    assert explained["latents"][0]["label_ru"] == f"понятие {expected[0]}"

    search = examples["search"]
    assert search["text"] == PLANTED_TEXT
    best = search["latents"][0]
    assert best["latent"] == run["planted"]
    assert best["cosine"] == pytest.approx(1.0, abs=1e-4)
    column = run["codes"][:, run["planted"]]
    top = np.argsort(-column, kind="stable")[: min(2, int((column > 0).sum()))]
    assert [image["id"] for image in best["images"]] == [f"test-{i:06d}" for i in top]
    np.testing.assert_allclose([i["activation"] for i in best["images"]], column[top], rtol=1e-4)
    assert examples["clusters"] == {"n_rows": 30, "n_clusters": 3}
    with Image.open(out / "examples.jpg") as image:
        panels = [collage_size(1, 32, 4)[1]]
        panels += [collage_size(len(hit["images"]), 32, 4)[1] for hit in search["latents"]]
        assert image.size == (collage_size(4, 32, 4)[0], sum(panels))
