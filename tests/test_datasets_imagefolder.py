"""The ``imagefolder`` source on real files in both layouts."""

from __future__ import annotations

from collections import Counter
from pathlib import Path

import pytest
from PIL import Image

from clipsae.data import build_dataset


def _write(path: Path, color: tuple[int, int, int], mode: str = "RGB") -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.new("RGB", (6, 5), color).convert(mode).save(path)


@pytest.fixture
def flat(tmp_path: Path) -> Path:
    for i in range(10):
        _write(tmp_path / "hot_dog" / f"{i}.png", (255, 0, 0))
    for i in range(5):
        _write(tmp_path / "cat" / "sub" / f"{i}.jpg", (0, 0, 255))
    (tmp_path / "cat" / "notes.txt").write_text("not an image")
    return tmp_path


def test_flat_layout_class_names_and_seeded_split(flat):
    ds = build_dataset("f", {"source": "imagefolder", "root": str(flat), "test_fraction": 0.2})
    assert ds.class_names == ["cat", "hot dog"]
    records = ds.records()
    assert len(records) == 15
    per_split = Counter((r.split, r.label) for r in records)
    # round(5 * 0.2) = 1 and round(10 * 0.2) = 2 test images per class.
    assert per_split == {("train", 0): 4, ("test", 0): 1, ("train", 1): 8, ("test", 1): 2}
    assert records == build_dataset("f", {"source": "imagefolder", "root": str(flat)}).records()
    other = build_dataset("f", {"source": "imagefolder", "root": str(flat), "seed": 1}).records()
    assert {r.id for r in records} == {r.id for r in other}
    test_ids = {r.id for r in records if r.split == "test"}
    assert test_ids != {r.id for r in other if r.split == "test"}
    for r in records:
        assert r.id.startswith("cat/" if r.label == 0 else "hot_dog/")
        assert Path(r.source) == flat / r.id


def test_images_are_rgb(flat):
    _write(flat / "cat" / "grey.png", (9, 9, 9), mode="L")
    ds = build_dataset("f", {"source": "imagefolder", "root": str(flat), "test_fraction": 0.0})
    by_id = {r.id: r for r in ds.records()}
    grey = ds.open_image(by_id["cat/grey.png"])
    assert grey.mode == "RGB"
    assert grey.getpixel((0, 0)) == (9, 9, 9)
    assert ds.open_image(by_id["hot_dog/0.png"]).getpixel((2, 2)) == (255, 0, 0)


def test_split_layout_is_kept(tmp_path):
    _write(tmp_path / "train" / "a" / "1.png", (1, 1, 1))
    _write(tmp_path / "train" / "b" / "1.png", (2, 2, 2))
    _write(tmp_path / "test" / "b" / "2.png", (3, 3, 3))
    ds = build_dataset("s", {"source": "imagefolder", "root": str(tmp_path)})
    assert ds.class_names == ["a", "b"]
    got = [(r.id, r.split, r.label) for r in ds.records()]
    assert got == [
        ("train/a/1.png", "train", 0),
        ("train/b/1.png", "train", 1),
        ("test/b/2.png", "test", 1),
    ]


def test_empty_class_folder_is_named(flat):
    (flat / "empty_class").mkdir()
    ds = build_dataset("f", {"source": "imagefolder", "root": str(flat)})
    with pytest.raises(ValueError, match=rf"{flat / 'empty_class'}: no images"):
        ds.records()


@pytest.mark.parametrize(
    ("spec", "message"),
    [
        ({}, r"dataset 'e' \(source 'imagefolder'\): missing spec key\(s\) \['root'\]"),
        ({"root": "/no/such/dir"}, r"dataset 'e': image folder /no/such/dir does not exist"),
    ],
)
def test_spec_errors(spec, message):
    with pytest.raises(ValueError, match=message):
        build_dataset("e", {"source": "imagefolder", **spec})


def test_root_without_class_folders(tmp_path):
    _write(tmp_path / "loose.png", (0, 0, 0))
    with pytest.raises(ValueError, match=rf"dataset 'e': {tmp_path} has no class sub-folders"):
        build_dataset("e", {"source": "imagefolder", "root": str(tmp_path)})
