"""The one interface every image source implements, plus the pieces they all share.

Sources differ in where pixels come from (generated, a folder, torchvision, Hugging Face), but the
rest of the pipeline only ever sees ``Record`` rows and ``open_image``. Datasets are handed to
DataLoader workers, so they hold specs and paths only; anything heavy (a torchvision dataset, an
Arrow table) is opened lazily in the process that uses it and dropped when pickled.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image

from clipsae.data.images import POLICY_KEYS, ImagePolicy, load_rgb

SPLITS = ("train", "test")
_LAZY_PREFIX = "_lazy_"
# Dataset keys read by the workflow itself (zero-shot prompts); everything else goes to the source.
WORKFLOW_DATASET_KEYS = ("templates",)


@dataclass(frozen=True)
class Record:
    """One image; ``id`` is unique within its dataset, ``source`` names its pixels' origin."""

    id: str
    split: str
    label: int
    source: str
    attrs: dict = field(default_factory=dict)


class ImageDataset(ABC):
    """A labelled image collection, all splits; subclasses say where the pixels come from.

    ``image_policy`` comes from the spec keys every source accepts (``strict``,
    ``max_image_pixels``; set by ``build_dataset``); sources decode files through ``decode`` so
    the limit applies, and ``open_image`` raises ``BadImage`` for files with no RGB reading.
    """

    image_policy: ImagePolicy = ImagePolicy()

    def __init__(self, name: str, class_names: list[str]) -> None:
        self.name = name
        self.class_names = class_names

    @abstractmethod
    def records(self) -> list[Record]:
        """All records of all splits, in the same order on every call and in every process."""

    @abstractmethod
    def open_image(self, record: Record) -> Image.Image:
        """The RGB image of ``record``; raises ``clipsae.data.images.BadImage`` for a bad file."""

    def decode(self, source: str | Path | bytes) -> Image.Image:
        """Decode one encoded image under this dataset's pixel limit."""
        return load_rgb(source, self.image_policy.max_image_pixels)

    def __getstate__(self) -> dict[str, Any]:
        # Open handles (``_lazy_*`` attributes) do not pickle or are too big to ship to workers.
        return {k: v for k, v in self.__dict__.items() if not k.startswith(_LAZY_PREFIX)}


def readable_class_name(raw: str) -> str:
    """Folder-style names use underscores where prompts need spaces (``hot_dog`` -> ``hot dog``)."""
    return raw.replace("_", " ")


def resolve_spec(
    name: str, spec: Mapping[str, Any], required: Sequence[str], defaults: Mapping[str, Any]
) -> dict[str, Any]:
    """Merge ``spec`` over ``defaults``, rejecting missing and unknown keys with the dataset's name.

    Unknown keys are errors rather than ignored because a typo (``n_trian``) would otherwise
    silently run with the default.
    """
    allowed = {"source", *required, *defaults}
    unknown = sorted(set(spec) - allowed)
    if unknown:
        raise ValueError(
            f"dataset {name!r} (source {spec.get('source')!r}): unknown spec key(s) {unknown}; "
            f"allowed: {sorted(allowed)}"
        )
    missing = [key for key in required if key not in spec]
    if missing:
        raise ValueError(
            f"dataset {name!r} (source {spec.get('source')!r}): missing spec key(s) {missing}"
        )
    return {**defaults, **spec}


def stratified_test_mask(labels: Sequence[int], test_fraction: float, seed: int) -> np.ndarray:
    """Mark ``round(n_c * test_fraction)`` items of each class as test, chosen by ``seed``.

    Per-class rounding keeps every class in both splits where it has enough items, which matters
    for zero-shot accuracy per class; the choice depends only on the labels' order and the seed.
    """
    if not 0.0 <= test_fraction < 1.0:
        raise ValueError(f"test_fraction must be in [0, 1), got {test_fraction}")
    labels_arr = np.asarray(labels, dtype=np.int64)
    mask = np.zeros(len(labels_arr), dtype=bool)
    rng = np.random.default_rng(seed)
    for label in np.unique(labels_arr):
        members = np.flatnonzero(labels_arr == label)
        n_test = round(len(members) * test_fraction)
        mask[rng.permutation(members)[:n_test]] = True
    return mask


Factory = Callable[[str, dict[str, Any]], ImageDataset]


@dataclass(frozen=True)
class _Source:
    factory: Factory
    required: tuple[str, ...]
    defaults: Mapping[str, Any] | None


_REGISTRY: dict[str, _Source] = {}


def register(
    source: str, *, required: Sequence[str] = (), defaults: Mapping[str, Any] | None = None
) -> Callable[[Factory], Factory]:
    """Make ``build_dataset`` construct datasets whose spec says ``source: <source>``.

    With ``defaults``, the factory receives the spec merged over them by ``resolve_spec`` (missing
    and unknown keys already rejected); without, it gets the raw spec and checks it itself (the
    synthetic source parses it into a typed spec).
    """

    def add(factory: Factory) -> Factory:
        _REGISTRY[source] = _Source(factory, tuple(required), defaults)
        return factory

    return add


def split_by_fraction(labels: Sequence[int], test_fraction: float, seed: int) -> list[str]:
    """Each item's split, for a source without splits of its own (``stratified_test_mask``)."""
    return ["test" if t else "train" for t in stratified_test_mask(labels, test_fraction, seed)]


def in_split_order(records: Iterable[Record]) -> list[Record]:
    """Train records, then test ones, each in source order: shard rows follow this order."""
    listed = list(records)
    return [r for split in SPLITS for r in listed if r.split == split]


def dataset_source_spec(entry: Mapping[str, Any]) -> dict[str, Any]:
    """The part of a ``datasets`` config entry that belongs to its source (no workflow keys).

    Steps that only read images depend on this part alone, so editing a dataset's templates
    reruns its zero-shot steps, not its preparation or extraction.
    """
    return {k: v for k, v in entry.items() if k not in WORKFLOW_DATASET_KEYS}


def build_dataset(name: str, spec: Mapping[str, Any]) -> ImageDataset:
    """Construct the dataset ``name`` described by a config entry ``spec``.

    The image-policy keys are taken out here, so every source accepts them without listing them.
    """
    allowed = sorted(_REGISTRY)
    if "source" not in spec:
        raise ValueError(f"dataset {name!r}: spec has no 'source' key; allowed sources: {allowed}")
    source = spec["source"]
    if source not in _REGISTRY:
        raise ValueError(f"dataset {name!r}: unknown source {source!r}; allowed sources: {allowed}")
    policy = ImagePolicy.from_spec(name, spec)
    registered = _REGISTRY[source]
    own = {k: v for k, v in spec.items() if k not in POLICY_KEYS}
    if registered.defaults is not None:
        own = resolve_spec(name, own, required=registered.required, defaults=registered.defaults)
    dataset = registered.factory(name, own)
    dataset.image_policy = policy
    return dataset
