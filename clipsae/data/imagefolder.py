"""A folder of images with one sub-folder per class, the layout most people already have.

Either ``root/<class>/*`` (split here with a seeded, per-class ``test_fraction``) or
``root/train/<class>/*`` + ``root/test/<class>/*`` (the user's own split, kept as is).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from PIL import Image

from clipsae.data import base

IMAGE_SUFFIXES = frozenset({".jpg", ".jpeg", ".png", ".bmp", ".gif", ".webp", ".tif", ".tiff"})


def _class_dirs(directory: Path) -> list[Path]:
    return sorted(p for p in directory.iterdir() if p.is_dir() and not p.name.startswith("."))


def _images(folder: Path) -> list[Path]:
    found = sorted(
        p for p in folder.rglob("*") if p.is_file() and p.suffix.lower() in IMAGE_SUFFIXES
    )
    if not found:
        raise ValueError(
            f"{folder}: no images (looked for {', '.join(sorted(IMAGE_SUFFIXES))}, recursively)"
        )
    return found


class ImageFolderDataset(base.ImageDataset):
    """Images under ``root``; record ids are paths relative to ``root``, so they stay unique."""

    def __init__(self, name: str, root: Path, test_fraction: float, seed: int) -> None:
        self.root = Path(root)
        if not self.root.is_dir():
            raise ValueError(f"dataset {name!r}: image folder {self.root} does not exist")
        self.test_fraction, self.seed = test_fraction, seed
        self.split_layout = all((self.root / s).is_dir() for s in base.SPLITS)
        folders = [self.root / s for s in base.SPLITS] if self.split_layout else [self.root]
        names = sorted({d.name for f in folders for d in _class_dirs(f)})
        if not names:
            raise ValueError(
                f"dataset {name!r}: {self.root} has no class sub-folders "
                "(expected root/<class>/<image> or root/train/<class>/<image>)"
            )
        self._folder_names = names
        super().__init__(name, [base.readable_class_name(n) for n in names])

    def _files(self, directory: Path) -> list[tuple[Path, int]]:
        return [
            (path, self._folder_names.index(d.name))
            for d in _class_dirs(directory)
            for path in _images(d)
        ]

    def _record(self, path: Path, split: str, label: int) -> base.Record:
        rel = path.relative_to(self.root).as_posix()
        return base.Record(rel, split, label, str(path), {})

    def records(self) -> list[base.Record]:
        if self.split_layout:
            return [
                self._record(path, split, label)
                for split in base.SPLITS
                for path, label in self._files(self.root / split)
            ]
        files = self._files(self.root)
        labels = [label for _, label in files]
        splits = base.split_by_fraction(labels, self.test_fraction, self.seed)
        return base.in_split_order(
            self._record(path, split, label)
            for (path, label), split in zip(files, splits, strict=True)
        )

    def open_image(self, record: base.Record) -> Image.Image:
        return self.decode(self.root / record.id)


@base.register("imagefolder", required=("root",), defaults={"test_fraction": 0.2, "seed": 0})
def build_imagefolder(name: str, spec: dict[str, Any]) -> ImageFolderDataset:
    return ImageFolderDataset(name, Path(spec["root"]), spec["test_fraction"], spec["seed"])
