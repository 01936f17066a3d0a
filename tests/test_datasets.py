"""The dataset interface, the index files and the synthetic source."""

from __future__ import annotations

import hashlib
import json
import pickle
import subprocess
import sys
from collections import Counter

import numpy as np
import polars as pl
import pytest

from clipsae.data import (
    Record,
    SyntheticSpec,
    build_dataset,
    caption,
    load_rgb,
    read_index,
    render,
    sample_attributes,
    stratified_test_mask,
    write_index,
)
from clipsae.data.synthetic import DEFAULT_COLORS, PALETTE
from clipsae.models.build_config import BuildConfig
from clipsae.models.embedded import caption_variants, generate_images

SPEC = {"source": "synthetic", "n_train": 40, "n_test": 10, "image_size": 32, "seed": 3}


def _digest(ds, records) -> list[str]:
    return [hashlib.sha256(ds.open_image(r).tobytes()).hexdigest() for r in records]


def test_synthetic_records_have_consistent_labels_and_attrs():
    ds = build_dataset("demo", SPEC)
    records = ds.records()
    assert [r.split for r in records] == ["train"] * 40 + ["test"] * 10
    assert len({r.id for r in records}) == 50
    assert ds.class_names == ["circle", "square", "triangle", "star", "cross", "ring"]
    for r in records:
        assert set(r.attrs) == {"shape", "color", "background"}
        assert r.attrs["color"] != r.attrs["background"]
        assert ds.class_names[r.label] == r.attrs["shape"]


@pytest.mark.parametrize(
    ("label_by", "n_classes", "name_of"),
    [
        ("color", 8, lambda a: a["color"]),
        ("shape_color", 48, lambda a: f"{a['color']} {a['shape']}"),
    ],
)
def test_synthetic_label_by(label_by, n_classes, name_of):
    ds = build_dataset("demo", {**SPEC, "label_by": label_by})
    assert len(ds.class_names) == n_classes == len(set(ds.class_names))
    for r in ds.records():
        assert ds.class_names[r.label] == name_of(r.attrs)


def test_synthetic_images_are_rgb_of_the_requested_size():
    ds = build_dataset("demo", SPEC)
    image = ds.open_image(ds.records()[0])
    assert image.mode == "RGB"
    assert image.size == (32, 32)


def test_synthetic_is_deterministic_in_any_order_and_after_pickling():
    ds = build_dataset("demo", SPEC)
    records = ds.records()
    forward = _digest(ds, records)
    assert _digest(ds, records[::-1]) == forward[::-1]
    clone = pickle.loads(pickle.dumps(ds))
    assert _digest(clone, records) == forward
    assert build_dataset("demo", SPEC).records() == records
    assert len(set(forward)) == len(forward)


def test_synthetic_is_identical_in_another_process():
    ds = build_dataset("demo", SPEC)
    record = ds.records()[7]
    code = (
        "import hashlib; from clipsae.data import build_dataset;"
        f"ds = build_dataset('demo', {SPEC!r}); r = ds.records()[7];"
        "print(hashlib.sha256(ds.open_image(r).tobytes()).hexdigest())"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == _digest(ds, [record])[0]


def test_different_seed_gives_different_data():
    a = build_dataset("a", SPEC)
    b = build_dataset("b", {**SPEC, "seed": 4})
    ra, rb = a.records(), b.records()
    assert [r.attrs for r in ra] != [r.attrs for r in rb]
    assert not set(_digest(a, ra)) & set(_digest(b, rb))


def test_synthetic_classes_are_not_degenerate():
    records = build_dataset("demo", {**SPEC, "n_train": 600, "n_test": 0}).records()
    counts = Counter(r.label for r in records)
    # Uniform over 6 shapes: each count ~ Binomial(600, 1/6), mean 100, sd ~9; 60 is > 4 sd away.
    assert len(counts) == 6
    assert min(counts.values()) > 60


# Area of each outline for circumradius 1: pi; ring of width 0.35 -> pi (1 - 0.65^2); diamond with
# half-diagonal 1 -> 2; equilateral triangle -> 3 sqrt(3) / 4; 5-point star with inner radius 0.45
# -> 10 * 0.45 sin(36 deg) / 2; cross of arms 2 x 0.66 -> 8 a - 4 a^2 with a = 0.33.
UNIT_AREAS = {
    "circle": np.pi,
    "ring": np.pi * (1 - 0.65**2),
    "square": 2.0,
    "triangle": 3 * np.sqrt(3) / 4,
    "star": 5 * 0.45 * np.sin(np.pi / 5),
    "cross": 8 * 0.33 - 4 * 0.33**2,
}


@pytest.mark.parametrize("shape", sorted(UNIT_AREAS))
def test_rendered_shape_has_the_geometric_area(shape):
    attrs = {"shape": shape, "color": "white", "background": "black"}
    image = render(attrs, 64, np.random.default_rng(0), noise=0, color_jitter=0)
    # With no jitter the first draw is the radius, as a fraction of the image side.
    radius = np.random.default_rng(0).uniform(0.18, 0.4) * 64
    area = int((np.asarray(image)[..., 0] > 128).sum())
    # Anti-aliased edges thresholded at half coverage: only a pixel-scale error along the outline.
    assert area == pytest.approx(UNIT_AREAS[shape] * radius**2, rel=0.08)


def test_noise_is_mild():
    attrs = {"shape": "circle", "color": "red", "background": "blue"}
    clean = np.asarray(render(attrs, 64, np.random.default_rng(1), noise=0), dtype=float)
    noisy = np.asarray(render(attrs, 64, np.random.default_rng(1), noise=8.0), dtype=float)
    # Same draws before the noise, so the difference is the rounded, clipped N(0, 8^2) noise.
    assert np.std(noisy - clean) == pytest.approx(8.0, rel=0.1)


def test_sample_attributes_respects_the_spec():
    spec = SyntheticSpec.from_dict("d", {"shapes": ["star"], "colors": ["red", "blue"]})
    attrs = sample_attributes(np.random.default_rng(0), spec)
    assert attrs["shape"] == "star"
    assert {attrs["color"], attrs["background"]} == {"red", "blue"}


def test_custom_palette():
    spec = {**SPEC, "colors": {"teal": [0, 128, 128], "pink": [255, 192, 203]}, "label_by": "color"}
    ds = build_dataset("demo", spec)
    assert ds.class_names == ["teal", "pink"]
    assert ds.open_image(ds.records()[0]).size == (32, 32)


def test_palette_names_stay_apart_under_the_jitter():
    rgb = np.array(list(PALETTE.values()), dtype=float)
    distances = np.linalg.norm(rgb[:, None] - rgb[None], axis=-1)[np.triu_indices(len(rgb), 1)]
    assert distances.min() >= 64
    assert list(DEFAULT_COLORS) == list(PALETTE)[:8]


def test_colors_by_name_come_from_the_whole_palette():
    ds = build_dataset("demo", {**SPEC, "colors": ["teal", "indigo", "red"], "label_by": "color"})
    assert ds.class_names == ["teal", "indigo", "red"]
    assert {r.attrs["color"] for r in ds.records()} == {"teal", "indigo", "red"}


def test_embedded_captions_use_the_build_palette():
    images, attributes = generate_images(12, 32, seed=0, colors=("teal", "indigo"))
    assert images.shape == (12, 32, 32, 3)
    captions = [caption_variants(attrs) for attrs in attributes]
    words = {w.strip(".") for group in captions for text in group for w in text.split()}
    assert {"teal", "indigo"} <= words and not words & (set(PALETTE) - {"teal", "indigo"})


def test_caption_templates_fill_the_attributes_and_reject_unknown_fields():
    attrs = {"shape": "star", "color": "orange", "background": "blue"}
    templates = ("{caption}", "a {shape}.", "a {shape}.", "a {color} {shape} on {background}.")
    assert caption_variants(attrs, templates) == [
        "an orange star on a blue background",
        "a star.",
        "a star.",
        "a orange star on blue.",
    ]
    assert BuildConfig(captions=list(templates)).captions == templates
    with pytest.raises(ValueError, match=r"'a \{colour\} shape\.'.*fields"):
        BuildConfig(captions=["a {colour} shape."])
    with pytest.raises(ValueError, match="at least one"):
        BuildConfig(captions=[])


def test_caption():
    assert caption({"shape": "circle", "color": "red", "background": "blue"}) == (
        "a red circle on a blue background"
    )
    assert caption({"shape": "star", "color": "orange", "background": "orange"}).startswith(
        "an orange star on an orange"
    )


def test_stale_record_is_refused():
    ds = build_dataset("demo", SPEC)
    record = ds.records()[0]
    other = "blue" if record.attrs["color"] != "blue" else "red"
    stale = Record(
        record.id, record.split, record.label, record.source, {**record.attrs, "color": other}
    )
    with pytest.raises(ValueError, match="different spec"):
        ds.open_image(stale)


@pytest.mark.parametrize(
    ("spec", "message"),
    [
        (
            {"n_train": 1},
            r"dataset 'bad': spec has no 'source' key; allowed sources: \[.*'synthetic'",
        ),
        (
            {"source": "nope"},
            r"dataset 'bad': unknown source 'nope'; allowed sources: \[.*'synthetic'",
        ),
        (
            {"source": "synthetic", "n_trian": 1},
            r"dataset 'bad'.*unknown spec key\(s\) \['n_trian'\]",
        ),
        ({"source": "synthetic", "shapes": ["blob"]}, r"dataset 'bad'.*unknown shapes \['blob'\]"),
        ({"source": "synthetic", "label_by": "size"}, r"dataset 'bad'.*label_by must be one of"),
        ({"source": "synthetic", "colors": ["red"]}, r"dataset 'bad'.*at least 2 colors"),
        ({"source": "synthetic", "colors": ["red", "mauve"]}, r"dataset 'bad'.*\['mauve'\]"),
    ],
)
def test_spec_errors_name_the_dataset_and_key(spec, message):
    with pytest.raises(ValueError, match=message):
        build_dataset("bad", spec)


def test_index_round_trip_and_schema(tmp_path):
    ds = build_dataset("demo", SPEC)
    path = write_index(ds, tmp_path / "demo")
    frame = pl.read_parquet(path)
    assert frame.schema == pl.Schema(
        {
            "id": pl.String,
            "split": pl.String,
            "label": pl.Int64,
            "source": pl.String,
            "shape": pl.String,
            "color": pl.String,
            "background": pl.String,
        }
    )
    assert json.loads((tmp_path / "demo" / "classes.json").read_text()) == {
        "classes": ds.class_names
    }
    records, classes = read_index(tmp_path / "demo")
    assert records == ds.records()
    assert classes == ds.class_names
    assert sorted(p.name for p in (tmp_path / "demo").iterdir()) == [
        "classes.json",
        "index.parquet",
    ]


def test_index_keeps_missing_attributes_missing(tmp_path):
    class Two(type(build_dataset("x", SPEC))):
        def records(self):
            return [Record("a", "train", 0, "s:a", {"k": 1}), Record("b", "test", 1, "s:b", {})]

    ds = Two("two", SyntheticSpec())
    write_index(ds, tmp_path)
    assert read_index(tmp_path)[0] == ds.records()


def test_stratified_test_mask_per_class_counts():
    labels = [0] * 10 + [1] * 5 + [2] * 1
    mask = stratified_test_mask(labels, 0.2, seed=0)
    assert [int(mask[np.asarray(labels) == c].sum()) for c in range(3)] == [2, 1, 0]
    assert np.array_equal(mask, stratified_test_mask(labels, 0.2, seed=0))
    many = [0] * 100
    assert stratified_test_mask(many, 0.2, seed=0).sum() == 20
    assert not np.array_equal(
        stratified_test_mask(many, 0.2, 0), stratified_test_mask(many, 0.2, 1)
    )
    with pytest.raises(ValueError, match=r"test_fraction must be in \[0, 1\)"):
        stratified_test_mask(many, 1.0, seed=0)


def test_load_rgb_from_path_and_bytes(tmp_path):
    from PIL import Image

    Image.new("L", (5, 4), 200).save(tmp_path / "g.png")
    from_path = load_rgb(tmp_path / "g.png")
    from_bytes = load_rgb((tmp_path / "g.png").read_bytes())
    assert from_path.mode == from_bytes.mode == "RGB"
    assert from_path.getpixel((0, 0)) == (200, 200, 200)
    assert from_path.tobytes() == from_bytes.tobytes()
