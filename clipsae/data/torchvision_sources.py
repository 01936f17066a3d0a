"""CIFAR-10, CIFAR-100 and Food-101 through torchvision (which downloads them with ``download``).

torchvision reads each split into one object; it is built lazily, per process, the first time a
split is needed, so the dataset object itself stays small enough to send to DataLoader workers.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

from PIL import Image

from clipsae.data import base
from clipsae.data.images import to_rgb

TorchvisionFactory = Callable[[Path, str, bool], Any]


def _cifar10(root: Path, split: str, download: bool) -> Any:
    from torchvision.datasets import CIFAR10

    return CIFAR10(root, train=split == "train", download=download)


def _cifar100(root: Path, split: str, download: bool) -> Any:
    from torchvision.datasets import CIFAR100

    return CIFAR100(root, train=split == "train", download=download)


def _food101(root: Path, split: str, download: bool) -> Any:
    from torchvision.datasets import Food101

    # Items are paths: the dataset decodes them like every other source, under its image policy,
    # and listing labels reads no JPEG.
    return Food101(root, split=split, download=download, loader=Path)


def _labels(ds: Any) -> list[int]:
    """Labels without decoding images: CIFAR keeps ``targets``; Food-101 only via its items."""
    if hasattr(ds, "targets"):
        return [int(t) for t in ds.targets]
    return [int(ds[i][1]) for i in range(len(ds))]


_FACTORIES: dict[str, TorchvisionFactory] = {
    "cifar10": _cifar10,
    "cifar100": _cifar100,
    "food101": _food101,
}


class TorchvisionDataset(base.ImageDataset):
    """A torchvision classification dataset with ``train`` and ``test`` splits.

    Nothing is read (or downloaded) until records, class names or images are asked for, so that
    validating a config stays instant.
    """

    def __init__(self, name: str, source: str, root: Path, download: bool) -> None:
        self.name, self.source, self.root, self.download = name, source, Path(root), download

    @property
    def class_names(self) -> list[str]:  # type: ignore[override]
        return [base.readable_class_name(c) for c in self._split("train").classes]

    def _split(self, split: str) -> Any:
        opened = self.__dict__.setdefault("_lazy_splits", {})
        if split not in opened:
            try:
                opened[split] = _FACTORIES[self.source](self.root, split, self.download)
            except RuntimeError as exc:  # torchvision's "not found or corrupted"
                raise ValueError(
                    f"dataset {self.name!r} ({self.source} under {self.root}): {exc}"
                ) from exc
        return opened[split]

    def records(self) -> list[base.Record]:
        return [
            base.Record(f"{split}-{i:06d}", split, label, f"{self.source}:{split}:{i}", {})
            for split in base.SPLITS
            for i, label in enumerate(_labels(self._split(split)))
        ]

    def open_image(self, record: base.Record) -> Image.Image:
        _, split, index = record.source.split(":")
        image = self._split(split)[int(index)][0]
        # CIFAR items are decoded arrays already; Food-101 items are file paths.
        return self.decode(image) if isinstance(image, Path) else to_rgb(image)


def build_torchvision(name: str, spec: dict[str, Any]) -> TorchvisionDataset:
    """The ``cifar10`` / ``cifar100`` / ``food101`` sources: ``root`` and ``download``."""
    return TorchvisionDataset(name, spec["source"], Path(spec["root"]), bool(spec["download"]))


for _source in _FACTORIES:
    base.register(_source, required=("root",), defaults={"download": False})(build_torchvision)
