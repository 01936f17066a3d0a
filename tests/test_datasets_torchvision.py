"""torchvision sources on tiny files in the exact on-disk formats torchvision reads.

The CIFAR files are pickles laid out as in the official archives; torchvision checks them against
the MD5s in its class attributes, so those attributes are pointed at our files' MD5s (the check
itself still runs). Food-101 is a folder of JPEGs plus ``meta/{train,test}.json``.
"""

from __future__ import annotations

import hashlib
import json
import pickle
from pathlib import Path

import numpy as np
import pytest
from PIL import Image
from torchvision.datasets import CIFAR10, CIFAR100

from clipsae.data import build_dataset


def _md5(path: Path) -> str:
    return hashlib.md5(path.read_bytes()).hexdigest()


def _cifar_rows(labels: list[int]) -> np.ndarray:
    """Image i is (i, 2i, 3i) everywhere except a red pixel at (0, 0); planes are R, G, B."""
    n = len(labels)
    planes = np.array([[i, 2 * i, 3 * i] for i in range(n)], dtype=np.uint8)
    data = np.repeat(planes[:, :, None], 1024, axis=2)
    data[:, 0, 0] = 255
    return data.reshape(n, 3072)


def _pickle(path: Path, obj: dict) -> list[str]:
    path.write_bytes(pickle.dumps(obj))
    return [path.name, _md5(path)]


@pytest.fixture(params=["cifar10", "cifar100"])
def cifar(request, tmp_path, monkeypatch):
    source = request.param
    cls, folder, label_key, names_key, meta_name = {
        "cifar10": (CIFAR10, "cifar-10-batches-py", "labels", "label_names", "batches.meta"),
        "cifar100": (CIFAR100, "cifar-100-python", "fine_labels", "fine_label_names", "meta"),
    }[source]
    base = tmp_path / folder
    base.mkdir()
    train, test = [0, 1, 2, 1, 0], [2, 0]
    train_file = "data_batch_1" if source == "cifar10" else "train"
    test_file = "test_batch" if source == "cifar10" else "test"
    train_entry = _pickle(base / train_file, {"data": _cifar_rows(train), label_key: train})
    test_entry = _pickle(base / test_file, {"data": _cifar_rows(test), label_key: test})
    meta_entry = _pickle(base / meta_name, {names_key: ["air_plane", "bird", "cat"]})
    monkeypatch.setattr(cls, "train_list", [train_entry])
    monkeypatch.setattr(cls, "test_list", [test_entry])
    monkeypatch.setattr(
        cls, "meta", {"filename": meta_name, "key": names_key, "md5": meta_entry[1]}
    )
    return source, tmp_path, train, test


def test_cifar_records_labels_and_pixels(cifar):
    source, root, train, test = cifar
    ds = build_dataset("c", {"source": source, "root": str(root)})
    assert ds.class_names == ["air plane", "bird", "cat"]
    records = ds.records()
    assert [(r.split, r.label) for r in records] == [("train", y) for y in train] + [
        ("test", y) for y in test
    ]
    assert records[6].source == f"{source}:test:1"
    assert len({r.id for r in records}) == len(records)
    image = ds.open_image(records[3])
    assert image.mode == "RGB" and image.size == (32, 32)
    assert image.getpixel((0, 0)) == (255, 6, 9)
    assert image.getpixel((5, 7)) == (3, 6, 9)


def test_cifar_corrupted_file_is_reported(cifar):
    source, root, *_ = cifar
    next(p for p in root.rglob("*") if p.is_file()).write_bytes(b"truncated")
    ds = build_dataset("c", {"source": source, "root": str(root)})
    with pytest.raises(ValueError, match=rf"dataset 'c' \({source} under {root}\).*corrupted"):
        ds.records()


def test_torchvision_dataset_is_lazy_and_picklable(cifar):
    source, root, *_ = cifar
    ds = build_dataset("c", {"source": source, "root": str(root / "missing")})
    with pytest.raises(ValueError, match="not found"):
        ds.class_names  # noqa: B018 - reading it is the test
    ok = build_dataset("c", {"source": source, "root": str(root)})
    record = ok.records()[2]
    clone = pickle.loads(pickle.dumps(ok))
    assert "_lazy_splits" not in clone.__dict__
    assert clone.open_image(record).tobytes() == ok.open_image(record).tobytes()


@pytest.fixture
def food(tmp_path):
    base = tmp_path / "food-101"
    meta = {"train": {"apple_pie": ["apple_pie/1", "apple_pie/2"], "hot_dog": ["hot_dog/3"]}}
    meta["test"] = {"apple_pie": ["apple_pie/4"], "hot_dog": ["hot_dog/5"]}
    (base / "meta").mkdir(parents=True)
    for split, classes in meta.items():
        (base / "meta" / f"{split}.json").write_text(json.dumps(classes))
        for label, ids in enumerate(classes.values()):
            for image_id in ids:
                path = base / "images" / f"{image_id}.jpg"
                path.parent.mkdir(parents=True, exist_ok=True)
                Image.new("L", (8, 6), 40 + 100 * label).save(path)
    return tmp_path


def test_food101(food):
    ds = build_dataset("f", {"source": "food101", "root": str(food), "download": False})
    assert ds.class_names == ["apple pie", "hot dog"]
    records = ds.records()
    assert [(r.split, r.label) for r in records] == [
        ("train", 0),
        ("train", 0),
        ("train", 1),
        ("test", 0),
        ("test", 1),
    ]
    image = ds.open_image(records[4])
    assert image.mode == "RGB" and image.size == (8, 6)
    # Grey 140 through JPEG: a few levels of error at most.
    assert np.abs(np.asarray(image, dtype=int) - 140).max() <= 3


def test_spec_needs_root():
    with pytest.raises(ValueError, match=r"dataset 'x' \(source 'cifar10'\): missing.*\['root'\]"):
        build_dataset("x", {"source": "cifar10"})
