"""The embedded CLIP: a tiny open_clip model trained contrastively on generated captions.

Real CLIP weights cannot be fetched offline, and a randomly initialised CLIP has chance-level
zero-shot accuracy, which would make every downstream number meaningless. A few hundred steps
of CLIP's own contrastive loss on synthetic image-caption pairs give a model whose image and text
towers share concepts (colours, shapes), so the demo's zero-shot and naming results mean something.
"""

from __future__ import annotations

import logging
import time
from dataclasses import asdict
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from open_clip.loss import ClipLoss
from safetensors.torch import save_file
from tqdm.auto import trange

from clipsae.data.synthetic import (
    DEFAULT_COLORS,
    SyntheticSpec,
    caption,
    parse_colors,
    render,
    sample_attributes,
)
from clipsae.models.build_config import DEFAULT_CAPTIONS, BuildConfig
from clipsae.models.clip import LoadedClip, load_clip
from clipsae.models.weights import BUILD_REPORT, WEIGHTS_FILE
from clipsae.runtime.atomic import atomic_output, atomic_write_json
from clipsae.runtime.device import DeviceSpec

log = logging.getLogger(__name__)


# Keeps the caption stream apart from the dataset splits' streams (split index 0 and 1), and
# the held-out images a build is scored on apart from both.
_CAPTION_STREAM = 7
HELDOUT_STREAM = 8
# Losses of the first steps, kept at full resolution in build.json: a rebuild of a prefix of the
# schedule (``stop_after``) must repeat them, which ties shipped weights to their settings.
PREFIX_STEPS = 10


def caption_variants(
    attrs: dict[str, str], templates: tuple[str, ...] = DEFAULT_CAPTIONS
) -> list[str]:
    """The image's captions, one per template (``BuildConfig.captions``)."""
    return [template.format(caption=caption(attrs), **attrs) for template in templates]


class GeneratedImages:
    """The images of one random stream, each rendered the first time it is indexed.

    A build draws 128 of many thousands of images per step; rendering only those lets a rebuild
    of the schedule's first steps (``stop_after``) cost seconds at any ``n_images``. Image ``i``
    draws its attributes and then its pixels from its own generator, so the attributes of all
    images come cheaply up front, and any order of rendering gives the same pixels.
    """

    def __init__(
        self,
        n: int,
        image_size: int,
        seed: int,
        colors: tuple[str, ...] = tuple(DEFAULT_COLORS),
        *,
        stream: int = _CAPTION_STREAM,
    ) -> None:
        self.spec = SyntheticSpec(image_size=image_size, seed=seed, colors=parse_colors(colors))
        self.stream = stream
        self.attributes = [sample_attributes(self._rng(i), self.spec) for i in range(n)]
        # Pages of an np.empty array are only committed when written: unrendered images cost
        # no memory.
        self._pixels = np.empty((n, image_size, image_size, 3), dtype=np.uint8)
        self._rendered = np.zeros(n, dtype=bool)

    def _rng(self, i: int) -> np.random.Generator:
        return np.random.default_rng((self.spec.seed, self.stream, i))

    def __len__(self) -> int:
        return len(self.attributes)

    def __getitem__(self, idx: np.ndarray) -> np.ndarray:
        """uint8 NHWC pixels of the images ``idx``, rendering those not rendered yet."""
        for i in idx[~self._rendered[idx]].tolist():
            rng = self._rng(i)
            # Drawn again to bring the generator to where the pixels start.
            attrs = sample_attributes(rng, self.spec)
            size, palette, noise = self.spec.image_size, self.spec.palette, self.spec.noise
            self._pixels[i] = np.asarray(render(attrs, size, rng, palette, noise))
            self._rendered[i] = True
        return self._pixels[idx]


def generate_images(
    n: int,
    image_size: int,
    seed: int,
    colors: tuple[str, ...] = tuple(DEFAULT_COLORS),
    *,
    stream: int = _CAPTION_STREAM,
) -> tuple[np.ndarray, list[dict[str, str]]]:
    """``n`` rendered images (uint8, NHWC) of one random stream, with their attributes."""
    images = GeneratedImages(n, image_size, seed, colors, stream=stream)
    return images[np.arange(n)], images.attributes


def caption_ids(captions: list[list[str]]) -> torch.Tensor:
    """(images, templates) integer ids of the caption texts: equal ids, equal texts."""
    ids: dict[str, int] = {}
    return torch.tensor([[ids.setdefault(c, len(ids)) for c in group] for group in captions])


def batch_positives(ids: torch.Tensor, which: torch.Tensor) -> torch.Tensor:
    """(texts, images) bool: image j fits text i when image j's caption under text i's template
    is text i. ``ids`` are the batch images' caption ids, ``which`` each text's template."""
    texts = ids.gather(1, which[:, None])  # (n, 1): text i's id
    return texts == ids[:, which].T


def multi_positive_loss(
    image_features: torch.Tensor,
    text_features: torch.Tensor,
    logit_scale: torch.Tensor,
    positives: torch.Tensor,
) -> torch.Tensor:
    """CLIP's symmetric cross-entropy with soft targets spread evenly over every positive:
    an image whose caption is the same text as another's is not that text's negative. With only
    the diagonal positive this is open_clip's ``ClipLoss``."""
    logits_per_image = logit_scale * image_features @ text_features.T
    pos = positives.to(logits_per_image.dtype)  # (texts, images)
    image_targets = pos.T / pos.sum(0)[:, None]
    text_targets = pos / pos.sum(1, keepdim=True)
    image_loss = -(image_targets * F.log_softmax(logits_per_image, 1)).sum(1).mean()
    text_loss = -(text_targets * F.log_softmax(logits_per_image.T, 1)).sum(1).mean()
    return (image_loss + text_loss) / 2


def image_tensor(clip: LoadedClip, images: np.ndarray) -> torch.Tensor:
    """uint8 NHWC images as the normalised NCHW floats the vision tower takes."""
    visual = clip.model.visual
    return _normalise(images, visual.image_mean, visual.image_std)


def image_size(clip: LoadedClip) -> int:
    size = clip.model.visual.image_size
    return size[0] if isinstance(size, tuple) else size


def _normalise(images: np.ndarray, mean: tuple, std: tuple) -> torch.Tensor:
    x = torch.from_numpy(images).permute(0, 3, 1, 2).float().div_(255.0)
    return (x - torch.tensor(mean)[:, None, None]) / torch.tensor(std)[:, None, None]


def build_embedded_clip(
    arch: str,
    out_dir: Path,
    cfg: BuildConfig,
    *,
    device: DeviceSpec = "auto",
    stop_after: int | None = None,
) -> tuple[LoadedClip, dict]:
    """Train ``arch`` from scratch and write ``open_clip_model.safetensors`` + ``build.json``.

    ``stop_after`` runs only that many steps of the same schedule (the learning rate still
    follows ``cfg.steps``), so a short rebuild reproduces the first losses of a full one.
    """
    clip = load_clip(arch, "none", device=device, seed=cfg.seed)
    model, dev = clip.model, clip.device
    images = GeneratedImages(cfg.n_images, image_size(clip), cfg.seed, cfg.colors)
    # Formatted once per distinct (shape, colour, background): a few thousand, not n_images.
    variants_of: dict[tuple[str, ...], list[str]] = {}
    captions = []
    for attrs in images.attributes:
        key = tuple(attrs.values())
        if key not in variants_of:
            variants_of[key] = caption_variants(attrs, cfg.captions)
        captions.append(variants_of[key])
    variants = len(captions[0])
    ids = caption_ids(captions)
    # A few thousand distinct texts among n_images x templates captions: each is tokenised once,
    # in id order (the order caption_ids numbers them).
    texts = list(dict.fromkeys(c for group in captions for c in group))
    tokens = clip.tokenizer(texts)

    model.train()
    optimizer = torch.optim.AdamW(model.parameters(), lr=cfg.lr, weight_decay=0.1)
    schedule = torch.optim.lr_scheduler.OneCycleLR(optimizer, cfg.lr, total_steps=cfg.steps)
    loss_fn = ClipLoss()
    gen = torch.Generator().manual_seed(cfg.seed)
    losses, start = [], time.perf_counter()
    n_steps = cfg.steps if stop_after is None else min(stop_after, cfg.steps)
    for _ in trange(n_steps, desc="build clip", unit="step"):
        idx = torch.randperm(cfg.n_images, generator=gen)[: cfg.batch_size]
        which = torch.randint(variants, (len(idx),), generator=gen)
        # uint8 images normalised per batch: many images stay small in memory.
        pixels = image_tensor(clip, images[idx.numpy()])
        image_f, text_f, scale = model(pixels.to(dev), tokens[ids[idx, which]].to(dev))[:3]
        if cfg.loss == "multi_positive":
            loss = multi_positive_loss(
                image_f, text_f, scale, batch_positives(ids[idx], which).to(dev)
            )
        else:
            loss = loss_fn(image_f, text_f, scale)
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()
        schedule.step()
        losses.append(float(loss.detach()))
    model.eval()

    out_dir = Path(out_dir)
    state = {k: v.detach().cpu().contiguous() for k, v in model.state_dict().items()}
    with atomic_output(out_dir / WEIGHTS_FILE) as tmp:
        save_file(state, str(tmp))
    report = {
        "arch": arch,
        "config": asdict(cfg),
        "final_loss": float(np.mean(losses[-20:])),
        "initial_loss": losses[0],
        "steps_run": n_steps,
        "first_losses": losses[:PREFIX_STEPS],
        "seconds": time.perf_counter() - start,
        "loss_curve": losses[:: max(1, len(losses) // 100)],
    }
    atomic_write_json(report, out_dir / BUILD_REPORT)
    log.info("built %s: contrastive loss %.3f -> %.3f", arch, losses[0], report["final_loss"])
    return clip, report
