"""Image activations: a batched, no-grad pass of a dataset through the vision tower into shards.

Extraction is the longest step and meets the messiest input, so it is built to survive both:

* Bad images (see ``clipsae.data.images``) are dropped before the model sees them and listed in
  ``skipped.parquet`` (``id``, ``source``, ``reason``, ``detail``) next to the row index, so the
  activation rows are exactly the good images; a dataset with ``strict: true`` fails instead.
* Everything is written to ``<out_dir>.partial`` and renamed at the end. A journal there lists
  each complete shard with its checksum and how far into the records it reaches, so a killed
  job resumes after its last intact shard instead of starting over.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import shutil
from collections import Counter
from collections.abc import Callable, Iterator, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import polars as pl
import torch
from PIL import Image
from torch.utils.data import DataLoader, Dataset, Subset
from tqdm.auto import tqdm

from clipsae.activations.row_index import ROW_INDEX_FILE, write_row_index
from clipsae.activations.shards import ShardInfo, ShardMeta, ShardWriter
from clipsae.data import ImageDataset, Record
from clipsae.data.images import BadImage
from clipsae.models.architectures import layer_width, parse_layer
from clipsae.models.clip import LoadedClip, VisionActivations
from clipsae.runtime.atomic import atomic_write_json
from clipsae.runtime.checksum import file_sha256

log = logging.getLogger(__name__)

PARTIAL_SUFFIX = ".partial"
JOURNAL_FILE = "journal.json"
SKIPPED_FILE = "skipped.parquet"

# Called with the position (into the records) of a bad image and what is wrong with it.
SkipHandler = Callable[[int, BadImage], None]
# A collated batch: good images (None when the whole batch was bad), their positions, the bad ones.
Batch = tuple[torch.Tensor | None, torch.Tensor, list[tuple[int, BadImage]]]


class _PreprocessedImages(Dataset):
    """Opens and preprocesses images in DataLoader workers; the main process runs the model.

    A bad image comes back as its ``BadImage`` in place of the tensor: raising in a worker would
    end the whole loader, and the decision to skip or fail belongs to the main process.
    """

    def __init__(self, dataset: ImageDataset, records: Sequence[Record], preprocess: Callable):
        self.dataset, self.records, self.preprocess = dataset, list(records), preprocess

    def __len__(self) -> int:
        return len(self.records)

    def __getitem__(self, i: int) -> tuple[torch.Tensor | BadImage, int]:
        try:
            image = self.dataset.open_image(self.records[i])
        except BadImage as bad:
            return bad, i
        return self.preprocess(image), i


def _collate(items: list[tuple[torch.Tensor | BadImage, int]]) -> Batch:
    good = [(x, i) for x, i in items if not isinstance(x, BadImage)]
    bad = [(i, x) for x, i in items if isinstance(x, BadImage)]
    images = torch.stack([x for x, _ in good]) if good else None
    return images, torch.tensor([i for _, i in good], dtype=torch.long), bad


def iter_image_batches(
    dataset: ImageDataset,
    records: Sequence[Record],
    preprocess: Callable,
    device: torch.device,
    batch_size: int = 256,
    num_workers: int = 0,
    desc: str = "images",
    on_skip: SkipHandler | None = None,
    start: int = 0,
) -> Iterator[tuple[torch.Tensor, torch.Tensor]]:
    """Yield (good images on ``device``, their positions into ``records``) in record order.

    Starts at record ``start``. Bad images are left out of the batches (which can therefore be
    short) and handed to ``on_skip`` (default: a logged warning), unless the dataset is
    ``strict``, in which case the first one raises ``BadImage`` naming the file.
    """
    report = on_skip or (lambda pos, bad: log.warning("skipped %s: %s", records[pos].source, bad))
    loader = DataLoader(
        Subset(_PreprocessedImages(dataset, records, preprocess), range(start, len(records))),
        batch_size=batch_size,
        num_workers=num_workers,
        collate_fn=_collate,
        pin_memory=device.type == "cuda",
        persistent_workers=False,
    )
    for images, positions, bad in tqdm(loader, desc=desc, unit="batch"):
        for position, problem in bad:
            _refuse_if_strict(dataset, records[position], problem)
            report(position, problem)
        if images is not None:
            yield images.to(device, non_blocking=True), positions


def _refuse_if_strict(dataset: ImageDataset, record: Record, bad: BadImage) -> None:
    if dataset.image_policy.strict:
        raise BadImage(
            bad.reason,
            f"{record.source} (dataset {dataset.name!r}, id {record.id!r}): {bad.detail}; "
            "the dataset has strict: true, so bad images are errors (set strict: false to skip "
            "them and list them in skipped.parquet)",
        ) from bad


@dataclass
class _Journal:
    """What an unfinished extraction leaves in ``<out_dir>.partial`` for the next attempt.

    Rewritten atomically after every complete shard. ``shards`` hold the shard's checksum and
    ``end``, the number of records consumed up to its last row; ``skipped`` the bad images among
    them. The fingerprint ties it to one model, layer, record list and settings.
    """

    path: Path
    fingerprint: str
    shards: list[dict[str, Any]] = field(default_factory=list)
    skipped: list[dict[str, Any]] = field(default_factory=list)
    resumed_at: int = 0  # ``end`` when this attempt began

    @property
    def end(self) -> int:
        return self.shards[-1]["end"] if self.shards else 0

    def row_positions(self) -> list[int]:
        """Record positions of the rows in the journal's shards, in row order."""
        bad = {s["position"] for s in self.skipped}
        return [p for p in range(self.end) if p not in bad]

    def skip(self, position: int, bad: BadImage) -> None:
        """Record a bad image, unless an earlier attempt did (a resume re-reads a few images)."""
        if position >= self.resumed_at:
            self.skipped.append({"position": position, "reason": bad.reason, "detail": bad.detail})

    def add_shard(self, info: ShardInfo, end: int) -> None:
        self.shards.append({**asdict(info), "end": end})
        state = {"fingerprint": self.fingerprint, "shards": self.shards, "skipped": self.skipped}
        atomic_write_json(state, self.path)


def _resume(partial: Path, fingerprint: str) -> _Journal:
    """The previous attempt's journal, cut back to its intact shards, in a directory holding
    nothing else; a fresh journal when there is none or it belongs to a different job."""
    journal = _Journal(partial / JOURNAL_FILE, fingerprint)
    old = json.loads(journal.path.read_text()) if journal.path.is_file() else None
    if old is not None and old["fingerprint"] != fingerprint:
        log.info("%s belongs to a different model, images or settings: starting over", partial)
    elif old is not None:
        for shard in old["shards"]:
            path = partial / shard["file"]
            if not path.is_file() or file_sha256(path) != shard["sha256"]:
                log.warning("%s is missing or changed: recomputing from there", path)
                break
            journal.shards.append(shard)
        journal.skipped = [s for s in old["skipped"] if s["position"] < journal.end]
        journal.resumed_at = journal.end
    _remove_all_but(partial, {s["file"] for s in journal.shards})
    if journal.shards:
        log.info(
            "resuming %s: %d intact shard(s) cover records 0..%d; continuing from there",
            partial,
            len(journal.shards),
            journal.end - 1,
        )
    return journal


def _remove_all_but(directory: Path, keep: set[str]) -> None:
    if not directory.is_dir():
        return
    for path in directory.iterdir():
        if path.name in keep:
            continue
        if path.is_dir():
            shutil.rmtree(path)
        else:
            path.unlink()


class _JournaledWriter(ShardWriter):
    """A ``ShardWriter`` that continues after the journal's shards and journals each new one.

    ``positions`` are the record positions of all rows, resumed ones included; the caller extends
    it before each ``add`` so a flushed shard knows how far into the records it reaches.
    """

    def __init__(
        self, directory: Path, d: int, dtype: str, shard_rows: int, extra: dict, journal: _Journal
    ) -> None:
        existing = [ShardInfo(s["file"], s["rows"], s["sha256"]) for s in journal.shards]
        super().__init__(directory, d, dtype, shard_rows, extra, existing)
        self.journal = journal
        self.positions = journal.row_positions()

    def shard_written(self, info: ShardInfo) -> None:
        self.journal.add_shard(info, end=self.positions[self.n_rows - 1] + 1)


def _fingerprint(clip: LoadedClip, records: Sequence[Record], settings: dict[str, Any]) -> str:
    """A digest of everything that decides the shards' bytes, so only the same job resumes.

    The vision weights are hashed too: a rebuilt model keeps its name but not its activations.
    """
    described = {**settings, "arch": clip.arch, "preprocess": repr(clip.preprocess)}
    digest = hashlib.sha256(json.dumps(described, sort_keys=True, default=str).encode())
    for record in records:
        digest.update(f"{record.id}\t{record.source}\t{record.label}\n".encode())
    for name, tensor in clip.model.visual.state_dict().items():
        digest.update(name.encode())
        digest.update(tensor.detach().cpu().contiguous().reshape(-1).view(torch.uint8).numpy())
    return digest.hexdigest()


@torch.inference_mode()
def extract_activations(
    clip: LoadedClip,
    dataset: ImageDataset,
    records: Sequence[Record],
    layer: str,
    out_dir: Path,
    batch_size: int = 256,
    num_workers: int = 0,
    dtype: str = "float32",
    shard_rows: int = 65536,
    extra: dict | None = None,
) -> ShardMeta:
    """Write the ``layer`` activations of the good images among ``records`` as shards.

    Alongside: ``index.parquet`` (row -> image id and label) and ``skipped.parquet``. Resumes a
    killed run of the same job from ``<out_dir>.partial`` (see the module docstring).
    """
    if not records:
        raise ValueError(f"no images to extract into {out_dir}")
    out_dir = Path(out_dir)
    partial = out_dir.with_name(out_dir.name + PARTIAL_SUFFIX)
    meta_extra = {"layer": layer, "arch": clip.arch, **(extra or {})}
    settings = {
        **meta_extra,
        "dtype": dtype,
        "shard_rows": shard_rows,
        "max_image_pixels": dataset.image_policy.max_image_pixels,
    }
    journal = _resume(partial, _fingerprint(clip, records, settings))
    d = layer_width(clip.arch, layer)
    writer = _JournaledWriter(partial, d, dtype, shard_rows, meta_extra, journal)
    encoder = VisionActivations(clip.model, parse_layer(layer, clip.arch))
    for images, positions in iter_image_batches(
        dataset,
        records,
        clip.preprocess,
        clip.device,
        batch_size,
        num_workers,
        desc=layer,
        on_skip=journal.skip,
        # Restart at the batch that holds the first missing record: a batch's make-up changes
        # float rounding, so re-running the same batches gives the bytes an unbroken run gives.
        start=journal.resumed_at - journal.resumed_at % batch_size,
    ):
        acts = layer_activations(clip, encoder, images)
        fresh = (positions >= journal.resumed_at).numpy()
        writer.positions.extend(positions[fresh].tolist())
        writer.add(acts[fresh])
    return _finish(writer, records, out_dir)


def layer_activations(
    clip: LoadedClip, encoder: VisionActivations, images: torch.Tensor
) -> np.ndarray:
    """Float32 activations of a preprocessed batch already on ``clip.device``.

    The one place the model reads images for activations, so that one image looked up later
    (``clipsae explain``) gets the numbers its extraction stored.
    """
    with torch.autocast(clip.device.type, enabled=clip.device.type == "cuda"):
        return encoder(images).float().cpu().numpy()


@torch.inference_mode()
def image_activations(clip: LoadedClip, layer: str, images: Sequence[Image.Image]) -> np.ndarray:
    """The ``layer`` activations (len(images), d) of decoded RGB images, as extraction does."""
    if not images:
        raise ValueError("no images to read activations of")
    encoder = VisionActivations(clip.model, parse_layer(layer, clip.arch))
    batch = torch.stack([clip.preprocess(image) for image in images]).to(clip.device)
    return layer_activations(clip, encoder, batch)


def _finish(writer: _JournaledWriter, records: Sequence[Record], out_dir: Path) -> ShardMeta:
    """Close the shards, write both tables, drop the journal and move the result into place."""
    skipped = writer.journal.skipped
    counts = dict(Counter(s["reason"] for s in skipped).most_common())
    if not writer.positions:
        raise ValueError(f"all {len(records)} images for {out_dir} are bad ({counts})")
    writer.meta.extra["skipped"] = counts
    meta = writer.close()
    partial = writer.directory
    write_row_index(records, writer.positions, partial / ROW_INDEX_FILE)
    _write_skipped(records, skipped, partial / SKIPPED_FILE)
    writer.journal.path.unlink()
    shutil.rmtree(out_dir, ignore_errors=True)
    os.replace(partial, out_dir)
    if skipped:
        log.warning(
            "skipped %d of %d images (%s); listed in %s",
            len(skipped),
            len(records),
            ", ".join(f"{reason}: {n}" for reason, n in counts.items()),
            out_dir / SKIPPED_FILE,
        )
    log.info("wrote %d x %d activations to %s", meta.n_rows, meta.d, out_dir)
    return meta


def _write_skipped(records: Sequence[Record], skipped: list[dict], path: Path) -> None:
    ordered = sorted(skipped, key=lambda s: s["position"])
    pl.DataFrame(
        {
            "id": [records[s["position"]].id for s in ordered],
            "source": [records[s["position"]].source for s in ordered],
            "reason": [s["reason"] for s in ordered],
            "detail": [s["detail"] for s in ordered],
        },
        schema={"id": pl.String, "source": pl.String, "reason": pl.String, "detail": pl.String},
    ).write_parquet(path)
