"""Hugging Face ``datasets`` sources: a generic ``hf`` source, ImageNet-Sketch and COCO.

Images are read undecoded (``Image(decode=False)``) and decoded by ``ImageDataset.decode``, so every
source shares one decoder. The Arrow tables are memory-mapped, opened lazily per process and never
pickled, so DataLoader workers receive only the spec.

Policies (documented here because they change results):

* ``imagenet_sketch``: hub id ``songweig/imagenet_sketch`` at revision ``refs/convert/parquet``
  (the repository's loading script is not supported by ``datasets`` >= 4; the parquet branch is
  the same data). It has a single 50,889-image split, so ``test_fraction`` (default 0.2) makes a
  seeded per-class test split. Class names are the first WordNet synonym ("tench, Tinca tinca" ->
  "tench"), the form CLIP prompt templates expect.
* ``coco``: hub id ``detection-datasets/coco`` (COCO 2017 detection, ``train`` and ``val``; each row
  has ``objects`` with a ``category`` list over the 80 categories). An image's label is its most
  frequent category, ties going to the smaller category id; all its categories are kept in the
  ``categories`` attribute ("|"-joined names) for multi-label analyses. Images without objects
  are skipped and their number logged.
"""

from __future__ import annotations

import logging
from collections import Counter
from pathlib import Path
from typing import Any

from PIL import Image

from clipsae.data import base

log = logging.getLogger(__name__)

HF_DEFAULTS: dict[str, Any] = {
    "splits": {"train": "train", "test": "test"},
    "image_column": "image",
    "label_column": "label",
    "class_names": None,
    "name": None,
    "revision": None,
    "data_dir": None,
    "test_fraction": None,
    "seed": 0,
}
IMAGENET_SKETCH_DEFAULTS = {
    **HF_DEFAULTS,
    "path": "songweig/imagenet_sketch",
    "revision": "refs/convert/parquet",
    "splits": {"train": "train"},
    "test_fraction": 0.2,
}
COCO_DEFAULTS = {
    **HF_DEFAULTS,
    "path": "detection-datasets/coco",
    "splits": {"train": "train", "test": "val"},
    "label_column": "objects",
    "category_field": "category",
}

# A row's label (None: skip the row) and its attributes.
RowLabel = tuple[int | None, dict[str, Any]]


def _class_label(feature: Any) -> Any:
    """The ClassLabel inside ``feature``, looking through list and sequence wrappers."""
    import datasets

    while not isinstance(feature, datasets.ClassLabel):
        inner = getattr(feature, "feature", None)
        if inner is None:
            return None
        feature = inner
    return feature


class HFDataset(base.ImageDataset):
    """Rows of one or more splits of a Hugging Face dataset (hub id or ``save_to_disk`` folder)."""

    def __init__(self, name: str, spec: dict[str, Any]) -> None:
        self.name, self.spec = name, spec
        unknown = sorted(set(spec["splits"]) - set(base.SPLITS))
        if unknown:
            raise ValueError(
                f"dataset {name!r}: splits {unknown} are not among {list(base.SPLITS)}"
            )
        if spec["test_fraction"] is not None and set(spec["splits"]) != {"train"}:
            raise ValueError(
                f"dataset {name!r}: test_fraction splits the 'train' split, so 'splits' must map "
                f"only 'train' (got {spec['splits']})"
            )

    def _where(self) -> str:
        return f"dataset {self.name!r} ({self.spec['path']})"

    def _hf_split(self, hf_split: str) -> Any:
        opened = self.__dict__.setdefault("_lazy_hf", {})
        if hf_split not in opened:
            opened[hf_split] = self._load(hf_split).cast_column(
                self.spec["image_column"], _undecoded_image()
            )
        return opened[hf_split]

    def _load(self, hf_split: str) -> Any:
        import datasets

        s = self.spec
        local = Path(s["path"])
        if (local / "dataset_dict.json").is_file():
            splits = datasets.load_from_disk(str(local))
            if hf_split not in splits:
                raise ValueError(f"{self._where()}: no split {hf_split!r} (has {list(splits)})")
            return splits[hf_split]
        return datasets.load_dataset(
            s["path"], s["name"], split=hf_split, revision=s["revision"], data_dir=s["data_dir"]
        )

    @property
    def class_names(self) -> list[str]:  # type: ignore[override]
        if self.spec["class_names"] is not None:
            return list(self.spec["class_names"])
        first = next(iter(self.spec["splits"].values()))
        feature = _class_label(self.label_feature(self._hf_split(first).features))
        if feature is None:
            raise ValueError(
                f"{self._where()}: column {self.spec['label_column']!r} is not a ClassLabel; "
                "give 'class_names' in the spec"
            )
        return [self.class_name(n) for n in feature.names]

    def label_feature(self, features: Any) -> Any:
        """The feature that holds the class names."""
        return features[self.spec["label_column"]]

    def class_name(self, raw: str) -> str:
        """Turn a dataset's label name into the name used in prompts."""
        return base.readable_class_name(raw)

    def row_labels(self, ds: Any) -> list[RowLabel]:
        """Labels of every row, read from Arrow without touching the image column."""
        column = ds.with_format("arrow")[self.spec["label_column"]].to_pylist()
        return [(int(label), {}) for label in column]

    def records(self) -> list[base.Record]:
        rows = [
            (split, hf_split, i, label, attrs)
            for split, hf_split in self.spec["splits"].items()
            for i, (label, attrs) in enumerate(self.row_labels(self._hf_split(hf_split)))
            if label is not None
        ]
        if self.spec["test_fraction"] is not None:
            splits = base.split_by_fraction(
                [row[3] for row in rows], self.spec["test_fraction"], self.spec["seed"]
            )
            rows = [(split, *row[1:]) for row, split in zip(rows, splits, strict=True)]
        return base.in_split_order(
            base.Record(f"{split}-{i:07d}", split, label, f"{self.spec['path']}:{hf}:{i}", attrs)
            for split, hf, i, label, attrs in rows
        )

    def open_image(self, record: base.Record) -> Image.Image:
        _, hf_split, index = record.source.rsplit(":", 2)
        cell = self._hf_split(hf_split)[int(index)][self.spec["image_column"]]
        return self.decode(cell["bytes"] if cell.get("bytes") is not None else cell["path"])


def _undecoded_image() -> Any:
    import datasets

    return datasets.Image(decode=False)


class ImageNetSketchDataset(HFDataset):
    def class_name(self, raw: str) -> str:
        return raw.split(",")[0].strip()


class CocoDataset(HFDataset):
    def label_feature(self, features: Any) -> Any:
        objects = features[self.spec["label_column"]]
        while not isinstance(objects, dict):  # a list of structs, in older feature notation
            objects = objects.feature
        return objects[self.spec["category_field"]]

    def row_labels(self, ds: Any) -> list[RowLabel]:
        objects = ds.with_format("arrow")[self.spec["label_column"]].to_pylist()
        names = self.class_names
        out: list[RowLabel] = []
        for obj in objects:
            categories = obj[self.spec["category_field"]] if obj else []
            if not categories:
                out.append((None, {}))
                continue
            counts = Counter(categories)
            label = min(counts, key=lambda c: (-counts[c], c))
            out.append((label, {"categories": "|".join(sorted({names[c] for c in counts}))}))
        skipped = sum(label is None for label, _ in out)
        if skipped:
            log.warning(
                "%s: skipped %d of %d images without objects", self._where(), skipped, len(out)
            )
        return out


base.register("hf", required=("path",), defaults=HF_DEFAULTS)(HFDataset)
base.register("imagenet_sketch", defaults=IMAGENET_SKETCH_DEFAULTS)(ImageNetSketchDataset)
base.register("coco", defaults=COCO_DEFAULTS)(CocoDataset)
