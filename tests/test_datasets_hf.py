"""Hugging Face sources on small datasets written with the real ``datasets`` API."""

from __future__ import annotations

import io
import pickle

import datasets as hfd
import numpy as np
import pytest
from PIL import Image

from clipsae.data import build_dataset


def _png(value: int, mode: str = "RGB") -> dict:
    buffer = io.BytesIO()
    Image.new("RGB", (4, 3), (value, value // 2, 7)).convert(mode).save(buffer, "PNG")
    return {"bytes": buffer.getvalue(), "path": None}


def _save(path, features, **splits) -> str:
    hfd.DatasetDict(
        {
            name: hfd.Dataset.from_dict(columns, features=features)
            for name, columns in splits.items()
        }
    ).save_to_disk(str(path))
    return str(path)


@pytest.fixture
def labelled(tmp_path):
    features = hfd.Features({"img": hfd.Image(), "y": hfd.ClassLabel(names=["hot_dog", "cat"])})
    return _save(
        tmp_path / "ds",
        features,
        train={"img": [_png(10), _png(20), _png(30, "L")], "y": [1, 0, 1]},
        validation={"img": [_png(40)], "y": [0]},
    )


def test_generic_hf_from_save_to_disk(labelled):
    spec = {
        "source": "hf",
        "path": labelled,
        "splits": {"train": "train", "test": "validation"},
        "image_column": "img",
        "label_column": "y",
    }
    ds = build_dataset("h", spec)
    assert ds.class_names == ["hot dog", "cat"]
    records = ds.records()
    assert [(r.split, r.label, r.source) for r in records] == [
        ("train", 1, f"{labelled}:train:0"),
        ("train", 0, f"{labelled}:train:1"),
        ("train", 1, f"{labelled}:train:2"),
        ("test", 0, f"{labelled}:validation:0"),
    ]
    assert ds.open_image(records[0]).getpixel((0, 0)) == (10, 5, 7)
    grey = ds.open_image(records[2])
    assert grey.mode == "RGB"
    assert len(set(grey.getpixel((0, 0)))) == 1
    clone = pickle.loads(pickle.dumps(ds))
    assert "_lazy_hf" in ds.__dict__ and "_lazy_hf" not in clone.__dict__
    assert clone.open_image(records[3]).tobytes() == ds.open_image(records[3]).tobytes()


def test_hf_class_names_from_spec_and_errors(tmp_path, labelled):
    plain = _save(
        tmp_path / "plain",
        hfd.Features({"image": hfd.Image(), "label": hfd.Value("int64")}),
        train={"image": [_png(1)], "label": [0]},
        test={"image": [_png(2)], "label": [0]},
    )
    with pytest.raises(ValueError, match=r"column 'label' is not a ClassLabel; give 'class_names'"):
        build_dataset("p", {"source": "hf", "path": plain}).class_names  # noqa: B018
    named = build_dataset("p", {"source": "hf", "path": plain, "class_names": ["thing"]})
    assert named.class_names == ["thing"]
    assert [r.split for r in named.records()] == ["train", "test"]
    with pytest.raises(ValueError, match=r"no split 'test' \(has \['train', 'validation'\]\)"):
        build_dataset("h", {"source": "hf", "path": labelled, "label_column": "y"}).records()
    with pytest.raises(ValueError, match=r"dataset 'h': splits \['val'\] are not among"):
        build_dataset("h", {"source": "hf", "path": labelled, "splits": {"val": "validation"}})


def test_hf_through_load_dataset_imagefolder(tmp_path):
    for name, value in [("ant", 50), ("bee", 90)]:
        (tmp_path / "raw" / name).mkdir(parents=True)
        for i in range(2):
            Image.new("RGB", (5, 5), (value + i, 0, 0)).save(tmp_path / "raw" / name / f"{i}.png")
    spec = {
        "source": "hf",
        "path": "imagefolder",
        "data_dir": str(tmp_path / "raw"),
        "splits": {"train": "train"},
        "test_fraction": 0.5,
    }
    ds = build_dataset("i", spec)
    assert ds.class_names == ["ant", "bee"]
    records = ds.records()
    assert sorted((r.split, r.label) for r in records) == [
        ("test", 0),
        ("test", 1),
        ("train", 0),
        ("train", 1),
    ]
    for r in records:
        red = ds.open_image(r).getpixel((2, 2))[0]
        assert red - (50, 90)[r.label] in (0, 1)


def test_imagenet_sketch_names_and_split(tmp_path):
    names = ["tench, Tinca tinca", "goldfish, Carassius auratus"]
    path = _save(
        tmp_path / "sketch",
        hfd.Features({"image": hfd.Image(), "label": hfd.ClassLabel(names=names)}),
        train={"image": [_png(v) for v in range(10)], "label": [0, 1] * 5},
    )
    ds = build_dataset("s", {"source": "imagenet_sketch", "path": path, "revision": None})
    assert ds.class_names == ["tench", "goldfish"]
    records = ds.records()
    # round(5 * 0.2) = 1 test image per class.
    assert [r.split for r in records].count("test") == 2
    assert sorted(r.label for r in records if r.split == "test") == [0, 1]
    assert np.asarray(ds.open_image(records[0])).shape == (3, 4, 3)


def test_coco_dominant_category_policy(tmp_path, caplog):
    categories = hfd.ClassLabel(names=["person", "dog", "cat"])
    features = hfd.Features(
        {
            "image": hfd.Image(),
            "objects": {"category": hfd.List(categories), "area": hfd.List(hfd.Value("int64"))},
        }
    )
    objects = [
        {"category": [1, 0, 1], "area": [1, 2, 3]},
        {"category": [2, 0], "area": [5, 5]},
        {"category": [], "area": []},
    ]
    path = _save(
        tmp_path / "coco",
        features,
        train={"image": [_png(1), _png(2), _png(3)], "objects": objects},
        val={"image": [_png(4)], "objects": [{"category": [2], "area": [9]}]},
    )
    ds = build_dataset("c", {"source": "coco", "path": path})
    assert ds.class_names == ["person", "dog", "cat"]
    got = [(r.split, r.label, r.attrs["categories"], r.source) for r in ds.records()]
    assert got == [
        ("train", 1, "dog|person", f"{path}:train:0"),
        ("train", 0, "cat|person", f"{path}:train:1"),
        ("test", 2, "cat", f"{path}:val:0"),
    ]
    assert "skipped 1 of 3 images without objects" in caplog.text
