"""Real labelled images through the data path every dataset takes.

Debian's ``dataset-fashion-mnist`` package (the standard IDX files) and the sample photos that
scikit-image ships go through prepare, decode, preprocess, extraction and collages. The byte-level
checks read the IDX files here with nothing but ``gzip`` and ``struct``, so they do not lean on
the parser they check. Small IDX files written by the tests cover the reader where Debian's are
absent.
"""

from __future__ import annotations

import gzip
import shutil
import struct
from collections import Counter
from pathlib import Path

import numpy as np
import polars as pl
import pytest
import yaml
from configs import weak_sampling
from PIL import Image, ImageOps

from clipsae.activations.shards import ActivationStore
from clipsae.config.validate import ConfigError, validate_config
from clipsae.data import build_dataset, read_index
from clipsae.data.idx import FASHION_MNIST_CLASSES, FASHION_MNIST_ROOT, read_idx
from clipsae.interpret.collage import collage_size, tile_origin
from clipsae.steps.collages import collages
from clipsae.steps.extract import extract_split
from clipsae.steps.features import encode_features
from clipsae.steps.prepare import prepare
from clipsae.steps.train import train

ROOT = Path(__file__).resolve().parent.parent
DEBIAN = Path(FASHION_MNIST_ROOT)
needs_debian = pytest.mark.skipif(
    not (DEBIAN / "t10k-labels-idx1-ubyte.gz").is_file(),
    reason="Debian's Fashion-MNIST is not installed (apt-get install dataset-fashion-mnist)",
)
MODEL = {"arch": "clipsae-tiny-vit", "pretrained": "none", "batch_size": 64}
EXTRACTION = {"num_workers": 0, "dtype": "float32", "shard_rows": 128}
TINY_SAE = {"arch": "topk", "k": 4, "expansion": 2, "batch_size": 64, "epochs": 2,
            "warmup_frac": 0.5, "dict_init": "data"}  # fmt: skip
TILE = 32


def _write_idx(path: Path, values: np.ndarray) -> None:
    """The IDX layout from the format's definition: magic, big-endian dims, unsigned bytes."""
    header = bytes([0, 0, 0x08, values.ndim]) + struct.pack(f">{values.ndim}I", *values.shape)
    data = header + values.astype(np.uint8).tobytes()
    path.write_bytes(gzip.compress(data) if path.suffix == ".gz" else data)


def _idx_folder(root: Path, *, gz: bool, n: dict[str, int], seed: int = 0) -> dict:
    """Four IDX files of random 5x4 images and shuffled labels 0..2; returns what was written."""
    rng = np.random.default_rng(seed)
    root.mkdir(parents=True, exist_ok=True)
    written = {}
    for split, prefix in (("train", "train"), ("test", "t10k")):
        images = rng.integers(0, 256, size=(n[split], 5, 4), dtype=np.uint8)
        labels = rng.permutation(np.arange(n[split]) % 3).astype(np.uint8)  # all three appear
        suffix = ".gz" if gz else ""
        _write_idx(root / f"{prefix}-images-idx3-ubyte{suffix}", images)
        _write_idx(root / f"{prefix}-labels-idx1-ubyte{suffix}", labels)
        written[split] = (images, labels)
    return written


def _raw_idx(path: Path) -> tuple[tuple[int, ...], bytes]:
    """Header dimensions and value bytes of a gzipped IDX file, read without clipsae."""
    data = gzip.decompress(path.read_bytes())
    ndim = data[3]
    return struct.unpack(f">{ndim}I", data[4 : 4 + 4 * ndim]), data[4 + 4 * ndim :]


@pytest.mark.parametrize("gz", [False, True])
def test_idx_source_reads_what_was_written(tmp_path: Path, gz: bool) -> None:
    written = _idx_folder(tmp_path, gz=gz, n={"train": 7, "test": 3})
    spec = {"source": "idx", "root": str(tmp_path), "class_names": ["a", "b", "c"]}
    ds = build_dataset("small", spec)
    assert ds.class_names == ["a", "b", "c"]
    records = ds.records()
    assert [r.id for r in records] == [f"train-{i:06d}" for i in range(7)] + [
        f"test-{i:06d}" for i in range(3)
    ]
    for record in records:
        images, labels = written[record.split]
        index = int(record.id.split("-")[1])
        assert record.label == labels[index]
        pixels = np.asarray(ds.open_image(record))
        assert pixels.shape == (5, 4, 3)
        for channel in range(3):
            np.testing.assert_array_equal(pixels[..., channel], images[index])


def test_max_images_is_a_seeded_subset_per_split(tmp_path: Path) -> None:
    written = _idx_folder(tmp_path, gz=True, n={"train": 50, "test": 20})
    spec = {"source": "idx", "root": str(tmp_path), "class_names": ["a", "b", "c"]}
    first = build_dataset("s", {**spec, "max_images": 10}).records()
    assert Counter(r.split for r in first) == {"train": 10, "test": 10}
    assert first == build_dataset("s", {**spec, "max_images": 10}).records()
    other = build_dataset("s", {**spec, "max_images": 10, "seed": 1}).records()
    assert {r.id for r in other} != {r.id for r in first}
    for record in first:  # ids keep the position in the file, so labels still line up
        assert record.label == written[record.split][1][int(record.id.split("-")[1])]
    ids = [r.id for r in first if r.split == "train"]
    assert ids == sorted(ids)
    # A cap above a split's size keeps the whole split.
    capped = build_dataset("s", {**spec, "max_images": 30}).records()
    assert Counter(r.split for r in capped) == {"train": 30, "test": 20}


def test_missing_and_foreign_files_are_named(tmp_path: Path) -> None:
    _idx_folder(tmp_path, gz=True, n={"train": 4, "test": 2})
    (tmp_path / "t10k-images-idx3-ubyte.gz").unlink()
    with pytest.raises(ValueError) as err:
        build_dataset("fm", {"source": "fashion_mnist", "root": str(tmp_path)})
    message = str(err.value)
    assert f"{tmp_path / 't10k-images-idx3-ubyte'} not found (nor t10k-images-idx3-ubyte.gz)" in (
        message
    )
    assert "dataset 'fm' (source 'fashion_mnist')" in message
    assert "apt-get install dataset-fashion-mnist" in message

    (tmp_path / "t10k-images-idx3-ubyte.gz").write_bytes(b"<html>not found</html>")
    with pytest.raises(ValueError, match=r"t10k-images-idx3-ubyte\.gz: BadGzipFile"):
        build_dataset("fm", {"source": "fashion_mnist", "root": str(tmp_path)})
    _write_idx(tmp_path / "t10k-images-idx3-ubyte.gz", np.zeros((3, 5, 4)))
    with pytest.raises(ValueError, match=r"holds \(2,\) labels but .* 3 images"):
        build_dataset("fm", {"source": "fashion_mnist", "root": str(tmp_path)})
    _write_idx(tmp_path / "t10k-images-idx3-ubyte.gz", np.zeros((2, 5, 4)))
    # Float labels (type 0x0D), in a plain file, which is read before a gzipped one.
    header = bytes([0, 0, 0x0D, 1]) + struct.pack(">I", 2)
    (tmp_path / "t10k-labels-idx1-ubyte").write_bytes(header + bytes(8))
    with pytest.raises(
        ValueError, match=r"t10k-labels-idx1-ubyte: IDX type code 0x0d; only unsigned"
    ):
        build_dataset("fm", {"source": "fashion_mnist", "root": str(tmp_path)})


def test_bad_keys_are_named(tmp_path: Path) -> None:
    _idx_folder(tmp_path, gz=False, n={"train": 4, "test": 2})
    spec = {"source": "idx", "root": str(tmp_path), "class_names": ["a", "b", "c"]}
    with pytest.raises(ValueError, match=r"max_images must be a positive integer or null, got 0"):
        build_dataset("d", {**spec, "max_images": 0})
    with pytest.raises(ValueError, match=r"has label 2 but class_names lists only 2 classes"):
        build_dataset("d", {**spec, "class_names": ["a", "b"]})
    with pytest.raises(ValueError, match="class_names has duplicates"):
        build_dataset("d", {**spec, "class_names": ["a", "b", "a"]})
    with pytest.raises(ValueError, match=r"missing spec key\(s\) \['class_names'\]"):
        build_dataset("d", {"source": "idx", "root": str(tmp_path)})
    with pytest.raises(ValueError, match=r"unknown spec key\(s\) \['max_image'\]"):
        build_dataset("d", {**spec, "max_image": 3})


def test_config_validation_names_the_missing_file(tmp_path: Path) -> None:
    config = yaml.safe_load((ROOT / "config" / "config.yaml").read_text())
    config["datasets"] = {"clothes": {"source": "fashion_mnist", "root": str(tmp_path / "none")}}
    with pytest.raises(ConfigError, match=r"datasets\.clothes: dataset 'clothes' .* not found"):
        validate_config(config, ROOT)


@needs_debian
def test_debian_fashion_mnist_labels_and_pixels_are_the_files() -> None:
    ds = build_dataset("fm", {"source": "fashion_mnist"})
    assert ds.class_names == list(FASHION_MNIST_CLASSES)
    records = ds.records()
    for split, prefix, n in (("train", "train", 60_000), ("test", "t10k", 10_000)):
        (count,), raw_labels = _raw_idx(DEBIAN / f"{prefix}-labels-idx1-ubyte.gz")
        shape, raw_pixels = _raw_idx(DEBIAN / f"{prefix}-images-idx3-ubyte.gz")
        assert count == shape[0] == n and shape[1:] == (28, 28)
        ours = [r for r in records if r.split == split]
        assert len(ours) == n
        per_class = Counter(r.label for r in ours)
        assert per_class == Counter(raw_labels)
        assert per_class == dict.fromkeys(range(10), n // 10)  # the dataset is balanced
        for record in ours[:: n // 25]:
            index = int(record.id.split("-")[1])
            assert record.label == raw_labels[index]
            image = ds.open_image(record)
            assert image.mode == "RGB" and image.size == (28, 28)
            expected = np.frombuffer(raw_pixels, np.uint8, 784, offset=index * 784)
            for channel in range(3):
                assert np.asarray(image)[..., channel].tobytes() == expected.tobytes()


def _extract(name: str, entry: dict, *, work: Path, split: str) -> tuple[Path, ActivationStore]:
    """The ``final`` activations of one split of a prepared dataset, by the workflow's step."""
    out = work / "acts" / split / "final"
    extract_split(model=MODEL, weights=None, dataset_name=name, dataset_entry=entry,
                  index_dir=work / "data", split=split, layer="final", out_dir=out,
                  extraction=EXTRACTION, device="cpu")  # fmt: skip
    return out, ActivationStore(out)


@needs_debian
def test_debian_fashion_mnist_goes_through_extraction_and_collages(tmp_path: Path) -> None:
    entry = {"source": "fashion_mnist", "max_images": 150, "seed": 3}
    prepare(name="clothes", entry=entry, out_dir=tmp_path / "data")
    records, classes = read_index(tmp_path / "data")
    assert classes == list(FASHION_MNIST_CLASSES)
    assert Counter(r.split for r in records) == {"train": 150, "test": 150}
    test_labels = read_idx(DEBIAN / "t10k-labels-idx1-ubyte.gz")
    for record in records:
        if record.split == "test":
            assert record.label == test_labels[int(record.id.split("-")[1])]

    acts_dir, store = _extract("clothes", entry, work=tmp_path, split="train")
    train_ids = [r.id for r in records if r.split == "train"]
    rows = pl.read_parquet(acts_dir / "index.parquet")
    assert rows["id"].to_list() == train_ids  # every real image is good: none skipped
    acts = store.load_all()
    assert acts.shape == (150, 128)
    assert np.isfinite(acts).all()
    # Different garments give different embeddings (a constant image would not).
    assert acts.std(axis=0).mean() > 1e-3

    sae_dir, features, tiles = tmp_path / "sae", tmp_path / "features", tmp_path / "collages"
    train(entry=TINY_SAE, train_path=acts_dir, val_path=None, out_dir=sae_dir, extra={},
          device="cpu")  # fmt: skip
    encode_features(
        sae_dir=sae_dir,
        acts_dir=acts_dir,
        out_dir=features,
        top_k=6,
        weak=weak_sampling(),
        device="cpu",
    )
    collages(features_dir=features, acts_dir=acts_dir, dataset_name="clothes", dataset_entry=entry,
             index_dir=tmp_path / "data", out_dir=tiles, n_latents=2, tile=TILE)  # fmt: skip
    written = sorted(tiles.glob("latent_*.jpg"))
    assert len(written) == 2
    top = pl.read_parquet(features / "top_images.parquet")
    weak = pl.read_parquet(features / "weak_images.parquet")
    ds = build_dataset("clothes", entry)
    by_id = {r.id: r for r in records}
    for path in written:
        latent = int(path.stem.split("_")[1])
        best = top.filter(pl.col("latent") == latent).sort("rank")
        n_weak = len(weak.filter(pl.col("latent") == latent))  # the contrast row
        collage = np.asarray(Image.open(path), dtype=np.float32)
        assert collage.shape == (*collage_size(len(best), TILE, n_weak=n_weak)[::-1], 3)
        # The first tile is the latent's best garment, resized; JPEG leaves a small error.
        x, y = tile_origin(0, TILE)
        garment = ds.open_image(by_id[rows["id"][best["row"][0]]])
        expected = np.asarray(ImageOps.fit(garment, (TILE, TILE), Image.Resampling.BICUBIC))
        lower = slice(TILE // 2, TILE)  # clear of the activation label
        error = np.abs(collage[y : y + TILE][lower, x : x + TILE] - expected[lower]).mean()
        assert error < 6.0, f"{path.name}: mean error {error:.1f} against the best garment"


SKIMAGE_PHOTOS = {  # class folder -> (file in skimage/data, its size as width, height)
    "astronaut": ("astronaut.png", (512, 512)),
    "cat": ("chelsea.png", (451, 300)),
    "coffee": ("coffee.png", (600, 400)),
    "rocket": ("rocket.jpg", (640, 427)),
    "camera": ("camera.png", (512, 512)),  # grey: decoded to RGB
}


def test_scikit_image_photos_go_through_an_imagefolder(tmp_path: Path) -> None:
    skimage_data = pytest.importorskip("skimage.data")
    data_dir = Path(skimage_data.__file__).parent
    for folder, (file, _) in SKIMAGE_PHOTOS.items():
        (tmp_path / "photos" / folder).mkdir(parents=True)
        shutil.copy(data_dir / file, tmp_path / "photos" / folder / file)
    entry = {"source": "imagefolder", "root": str(tmp_path / "photos"), "test_fraction": 0.0}
    prepare(name="photos", entry=entry, out_dir=tmp_path / "data")
    records, classes = read_index(tmp_path / "data")
    assert classes == sorted(SKIMAGE_PHOTOS)
    ds = build_dataset("photos", entry)
    for record in records:
        folder = classes[record.label]
        file, size = SKIMAGE_PHOTOS[folder]
        assert record.id == f"{folder}/{file}"
        image = ds.open_image(record)
        assert image.mode == "RGB" and image.size == size
        # scikit-image's own loader (imageio) reads the same pixels.
        reference = getattr(skimage_data, Path(file).stem)()
        pixels = np.asarray(image)
        if reference.ndim == 2:
            reference = np.repeat(reference[..., None], 3, axis=2)
        np.testing.assert_array_equal(pixels, reference)

    acts_dir, store = _extract("photos", entry, work=tmp_path, split="train")
    acts = store.load_all()
    assert acts.shape == (5, 128) and np.isfinite(acts).all()
    assert pl.read_parquet(acts_dir / "index.parquet")["label"].to_list() == [
        r.label for r in records
    ]
    distances = np.linalg.norm(acts[:, None] - acts[None], axis=-1)
    assert distances[~np.eye(5, dtype=bool)].min() > 1e-3  # five photos, five embeddings
