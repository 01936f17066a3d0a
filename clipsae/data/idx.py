"""IDX files, the MNIST family's format, as a dataset; ``fashion_mnist`` reads Debian's copy.

An IDX file is a 4-byte magic (two zero bytes, a type code, the number of dimensions), one
big-endian uint32 per dimension, then the values in C order. MNIST, Fashion-MNIST,
Kuzushiji-MNIST and EMNIST ship unsigned-byte files named ``train-images-idx3-ubyte``,
``train-labels-idx1-ubyte``, ``t10k-images-idx3-ubyte`` and ``t10k-labels-idx1-ubyte``, plain or
gzipped; the ``train`` and ``t10k`` pairs are the ``train`` and ``test`` splits.

Two sources share the reader: ``idx`` for any such folder (``root`` and ``class_names`` given) and
``fashion_mnist``, whose defaults are the path where Debian's ``dataset-fashion-mnist`` package puts
the files and the dataset's ten class names, so the real 70,000 labelled images need no download.

Building a dataset reads the headers and the labels (70 KB for Fashion-MNIST), so a missing file,
a foreign file or too few class names fail config validation. The pixels (47 MB for
Fashion-MNIST's train split) are read once per process, the first time an image is opened: a
plain file is memory-mapped, a gzipped one decompressed.
"""

from __future__ import annotations

import gzip
import struct
from pathlib import Path
from typing import IO, Any

import numpy as np
from PIL import Image

from clipsae.data.base import SPLITS, ImageDataset, Record, register
from clipsae.data.images import to_rgb

# Where Debian's dataset-fashion-mnist package installs the four files (gzipped).
FASHION_MNIST_ROOT = "/usr/share/datasets/fashion-mnist"
# Label order of the dataset's README (and torchvision's FashionMNIST.classes).
FASHION_MNIST_CLASSES = (
    "T-shirt/top",
    "Trouser",
    "Pullover",
    "Dress",
    "Coat",
    "Sandal",
    "Shirt",
    "Sneaker",
    "Bag",
    "Ankle boot",
)
# File-name prefix of each split in the MNIST family's naming.
SPLIT_PREFIX = {"train": "train", "test": "t10k"}
IDX_DEFAULTS: dict[str, Any] = {"max_images": None, "seed": 0}
UNSIGNED_BYTE = 0x08


def _open(path: Path) -> IO[bytes]:
    return gzip.open(path, "rb") if path.suffix == ".gz" else path.open("rb")


def read_idx_header(path: Path) -> tuple[int, ...]:
    """The dimensions stored in an unsigned-byte IDX file's header (its values start after it)."""
    try:
        with _open(path) as stream:
            magic = stream.read(4)
            if len(magic) < 4 or magic[:2] != b"\0\0":
                raise ValueError(
                    f"{path}: not an IDX file (starts with {magic.hex() or 'nothing'})"
                )
            if magic[2] != UNSIGNED_BYTE:
                raise ValueError(
                    f"{path}: IDX type code 0x{magic[2]:02x}; only unsigned bytes (0x08), "
                    "the MNIST family's type, are supported"
                )
            dims = stream.read(4 * magic[3])
    except (OSError, EOFError) as exc:  # e.g. a .gz that is not gzip, or cut short
        raise ValueError(f"{path}: {type(exc).__name__}: {exc}") from exc
    if len(dims) < 4 * magic[3]:
        raise ValueError(f"{path}: IDX header cut short")
    return struct.unpack(f">{magic[3]}I", dims)


def read_idx(path: Path) -> np.ndarray:
    """All values of an unsigned-byte IDX file, shaped as its header says."""
    shape = read_idx_header(path)
    offset = 4 + 4 * len(shape)
    expected = int(np.prod(shape))
    if path.suffix == ".gz":
        with _open(path) as stream:
            values = np.frombuffer(stream.read(), dtype=np.uint8, offset=offset)
    else:
        values = np.memmap(path, dtype=np.uint8, mode="r", offset=offset)
    if values.size != expected:
        raise ValueError(
            f"{path}: holds {values.size} values after its header, which says {shape} "
            f"({expected} values)"
        )
    return values.reshape(shape)


def find_idx_file(root: Path, stem: str) -> Path:
    """``root/stem`` or ``root/stem.gz``, whichever exists (the plain file if both do)."""
    for candidate in (root / stem, root / f"{stem}.gz"):
        if candidate.is_file():
            return candidate
    raise FileNotFoundError(f"{root / stem} not found (nor {stem}.gz)")


class IdxDataset(ImageDataset):
    """The ``train`` and ``t10k`` image and label files under ``root``, as grey images in RGB.

    ``max_images`` keeps a seeded random subset of at most that many images per split (in file
    order); record ids keep the image's position in its file (``test-001234``).
    """

    def __init__(
        self,
        name: str,
        *,
        source: str,
        root: Path,
        class_names: list[str],
        max_images: int | None,
        seed: int,
    ) -> None:
        super().__init__(name, class_names)
        self.source, self.root, self.max_images, self.seed = source, Path(root), max_images, seed
        self.images: dict[str, Path] = {}
        self.labels: dict[str, np.ndarray] = {}
        for split, prefix in SPLIT_PREFIX.items():
            images = find_idx_file(self.root, f"{prefix}-images-idx3-ubyte")
            labels_path = find_idx_file(self.root, f"{prefix}-labels-idx1-ubyte")
            shape = read_idx_header(images)
            labels = read_idx(labels_path)
            if len(shape) != 3:
                raise ValueError(f"{images}: expected 3 dimensions (n, rows, cols), got {shape}")
            if labels.ndim != 1 or len(labels) != shape[0]:
                raise ValueError(
                    f"{labels_path} holds {labels.shape} labels but {images} {shape[0]} images"
                )
            if labels.size and labels.max() >= len(class_names):
                raise ValueError(
                    f"{labels_path} has label {int(labels.max())} but class_names lists only "
                    f"{len(class_names)} classes"
                )
            self.images[split], self.labels[split] = images, np.array(labels)  # not a mmap

    def _chosen(self, split: str) -> np.ndarray:
        n = len(self.labels[split])
        if self.max_images is None or self.max_images >= n:
            return np.arange(n)
        rng = np.random.default_rng((self.seed, SPLITS.index(split)))
        return np.sort(rng.choice(n, size=self.max_images, replace=False))

    def records(self) -> list[Record]:
        return [
            Record(
                f"{split}-{i:06d}",
                split,
                int(self.labels[split][i]),
                f"{self.source}:{split}:{i}",
                {},
            )
            for split in SPLITS
            for i in self._chosen(split).tolist()
        ]

    def _pixels(self, split: str) -> np.ndarray:
        opened = self.__dict__.setdefault("_lazy_pixels", {})
        if split not in opened:
            opened[split] = read_idx(self.images[split])
        return opened[split]

    def open_image(self, record: Record) -> Image.Image:
        _, split, index = record.source.split(":")
        return to_rgb(Image.fromarray(np.asarray(self._pixels(split)[int(index)]), "L"))


def _check_keys(where: str, merged: dict[str, Any]) -> None:
    names = merged["class_names"]
    if (
        not isinstance(names, list | tuple)
        or not names
        or not all(isinstance(c, str) for c in names)
    ):
        raise ValueError(f"{where}: class_names must be a non-empty list of strings")
    if len(set(names)) != len(names):
        raise ValueError(f"{where}: class_names has duplicates")
    limit = merged["max_images"]
    if limit is not None and (isinstance(limit, bool) or not isinstance(limit, int) or limit < 1):
        raise ValueError(f"{where}: max_images must be a positive integer or null, got {limit!r}")
    if isinstance(merged["seed"], bool) or not isinstance(merged["seed"], int):
        raise ValueError(f"{where}: seed must be an integer, got {merged['seed']!r}")


def _build(name: str, merged: dict[str, Any], *, source: str, hint: str = "") -> IdxDataset:
    """The dataset of checked keys; ``hint`` follows a missing-file message."""
    where = f"dataset {name!r} (source {source!r})"
    _check_keys(where, merged)
    try:
        return IdxDataset(
            name,
            source=source,
            root=Path(merged["root"]),
            class_names=list(merged["class_names"]),
            max_images=merged["max_images"],
            seed=merged["seed"],
        )
    except FileNotFoundError as exc:
        raise ValueError(f"{where}: {exc}{hint}") from None
    except ValueError as exc:
        raise ValueError(f"{where}: {exc}") from None


@register("idx", required=("root", "class_names"), defaults=IDX_DEFAULTS)
def build_idx(name: str, spec: dict[str, Any]) -> IdxDataset:
    """The ``idx`` source: ``root``, ``class_names`` (label order), ``max_images``, ``seed``."""
    return _build(name, spec, source="idx")


@register(
    "fashion_mnist",
    defaults={
        **IDX_DEFAULTS,
        "root": FASHION_MNIST_ROOT,
        "class_names": list(FASHION_MNIST_CLASSES),
    },
)
def build_fashion_mnist(name: str, spec: dict[str, Any]) -> IdxDataset:
    """The ``fashion_mnist`` source: ``idx`` with Debian's path and the ten class names."""
    hint = (
        "; install Debian's dataset-fashion-mnist package (apt-get install dataset-fashion-mnist)"
        " or set root to a folder with the four Fashion-MNIST files"
    )
    return _build(name, spec, source="fashion_mnist", hint=hint)
