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
from clipsae.models.build_config import BuildConfig
from clipsae.models.clip import load_clip
from clipsae.models.weights import WEIGHTS_FILE
from clipsae.runtime.atomic import atomic_output, atomic_write_json
from clipsae.runtime.device import DeviceSpec

log = logging.getLogger(__name__)


# Keeps the caption stream apart from the dataset splits' streams (split index 0 and 1).
_CAPTION_STREAM = 7


def caption_variants(attrs: dict[str, str]) -> list[str]:
    """Several phrasings, so zero-shot prompts about one attribute match the training text."""
    color, shape = attrs["color"], attrs["shape"]
    return [
        caption(attrs),
        f"a photo of a {color} {shape}.",
        f"a photo of a {shape}.",
        f"a {color} shape.",
        f"a {attrs['background']} background.",
    ]


def generate_pairs(
    n: int, image_size: int, seed: int, colors: tuple[str, ...] = tuple(DEFAULT_COLORS)
) -> tuple[np.ndarray, list[list[str]]]:
    """``n`` rendered images (uint8, NHWC) with their caption variants."""
    spec = SyntheticSpec(image_size=image_size, seed=seed, colors=parse_colors(colors))
    images = np.empty((n, image_size, image_size, 3), dtype=np.uint8)
    captions = []
    for i in trange(n, desc="captions", unit="img", leave=False):
        rng = np.random.default_rng((seed, _CAPTION_STREAM, i))
        attrs = sample_attributes(rng, spec)
        images[i] = np.asarray(render(attrs, image_size, rng, spec.palette, spec.noise))
        captions.append(caption_variants(attrs))
    return images, captions


def _normalise(images: np.ndarray, mean: tuple, std: tuple) -> torch.Tensor:
    x = torch.from_numpy(images).permute(0, 3, 1, 2).float().div_(255.0)
    return (x - torch.tensor(mean)[:, None, None]) / torch.tensor(std)[:, None, None]


def build_embedded_clip(
    arch: str, out_dir: Path, cfg: BuildConfig, *, device: DeviceSpec = "auto"
) -> dict:
    """Train ``arch`` from scratch and write ``open_clip_model.safetensors`` + ``build.json``."""
    clip = load_clip(arch, "none", device=device, seed=cfg.seed)
    model, dev = clip.model, clip.device
    visual = model.visual
    size = visual.image_size[0] if isinstance(visual.image_size, tuple) else visual.image_size
    images, captions = generate_pairs(cfg.n_images, size, cfg.seed, cfg.colors)
    pixels = _normalise(images, visual.image_mean, visual.image_std)
    variants = len(captions[0])
    tokens = clip.tokenizer([c for group in captions for c in group]).view(
        cfg.n_images, variants, -1
    )

    model.train()
    optimizer = torch.optim.AdamW(model.parameters(), lr=cfg.lr, weight_decay=0.1)
    schedule = torch.optim.lr_scheduler.OneCycleLR(optimizer, cfg.lr, total_steps=cfg.steps)
    loss_fn = ClipLoss()
    gen = torch.Generator().manual_seed(cfg.seed)
    losses, start = [], time.perf_counter()
    for _ in trange(cfg.steps, desc="build clip", unit="step"):
        idx = torch.randperm(cfg.n_images, generator=gen)[: cfg.batch_size]
        which = torch.randint(variants, (len(idx),), generator=gen)
        image_f, text_f, scale = model(pixels[idx].to(dev), tokens[idx, which].to(dev))[:3]
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
        "seconds": time.perf_counter() - start,
        "loss_curve": losses[:: max(1, len(losses) // 100)],
    }
    atomic_write_json(report, out_dir / "build.json")
    log.info("built %s: contrastive loss %.3f -> %.3f", arch, losses[0], report["final_loss"])
    return report
