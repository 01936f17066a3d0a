"""Loading CLIP models through open_clip and reading the activations an SAE is trained on.

A model is an open_clip architecture name plus a ``pretrained`` value: an open_clip tag
(``openai``, ``laion2b_s34b_b79k``), a local checkpoint file, ``none`` for random weights
(drawn from the entry's ``seed``, so every job sees the same ones), or ``shipped`` for the
weights the package ships for its own architectures (``clipsae.models.weights``).
The project ships its own tiny architectures (``clipsae/models/model_configs``) so the pipeline
runs offline; they load through exactly the same open_clip code as ``ViT-B-32``.

Layers: ``final`` is the image embedding (after ``ln_post`` and the projection, before the L2
normalisation that zero-shot applies); ``block{N}`` is the residual stream after the N-th
(0-based) vision transformer block at the CLS token.
"""

from __future__ import annotations

import functools
import logging
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from types import ModuleType

import torch
from torch import nn

from clipsae.models.architectures import (
    DEFAULT_SEED,
    EMBEDDED_CONFIG_DIR,
    check_pretrained,
    check_seed,
    is_checkpoint_path,
)
from clipsae.models.weights import SHIPPED, shipped_weights
from clipsae.runtime.device import DeviceSpec, pick_device

log = logging.getLogger(__name__)


@functools.cache
def registered_open_clip() -> ModuleType:
    """open_clip, with the project's architectures registered, imported on first use.

    Importing it costs seconds (it pulls in torchvision, timm and transformers when installed);
    a workflow job that only reads activations or an SAE must not pay that at startup.
    """
    import open_clip

    open_clip.add_model_config(EMBEDDED_CONFIG_DIR)
    return open_clip


@dataclass
class LoadedClip:
    model: nn.Module
    preprocess: Callable
    tokenizer: Callable
    arch: str
    device: torch.device


def load_clip(
    arch: str, pretrained: str = "none", *, device: DeviceSpec = "auto", seed: int = DEFAULT_SEED
) -> LoadedClip:
    """Build ``arch`` and load its weights; checkpoint files load without pickle.

    Random weights (``none``) come from ``seed`` on a forked CPU generator: every process, job
    and rerun sees the same model, and the caller's global RNG state is left as it was. open_clip
    initialises on the CPU before moving the model, so the weights do not depend on the device.
    """
    check_pretrained(arch, pretrained)
    check_seed(pretrained, seed)
    if pretrained == SHIPPED:
        pretrained = str(shipped_weights(arch))
    if is_checkpoint_path(pretrained) and not Path(pretrained).exists():
        raise FileNotFoundError(f"checkpoint {pretrained} does not exist")
    dev = pick_device(device)
    open_clip = registered_open_clip()
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        model, _, preprocess = open_clip.create_model_and_transforms(
            arch,
            pretrained=None if pretrained == "none" else pretrained,
            device=dev,
            weights_only=True,
        )
    model.eval()
    log.info("loaded %s (pretrained=%s, seed=%d) on %s", arch, pretrained, seed, dev)
    return LoadedClip(model, preprocess, open_clip.get_tokenizer(arch), arch, dev)


Splice = Callable[[torch.Tensor], torch.Tensor]


class VisionActivations(nn.Module):
    """Runs the vision tower only as far as a layer needs.

    ``block{N}`` stops after block N, so reading an early layer costs a fraction of a full
    forward pass. ``finish`` continues from a block's residual stream to the image embedding,
    optionally replacing the CLS token by ``splice(cls)``: this is how an SAE inserted at an
    inner layer is evaluated on the model's own output.
    """

    def __init__(self, clip_model: nn.Module, block: int | None) -> None:
        super().__init__()
        self.visual = clip_model.visual
        self.block = block
        blocks = self.visual.transformer.resblocks
        self._batch_first = getattr(self.visual.transformer, "batch_first", True)
        self._head = blocks if block is None else blocks[: block + 1]
        self._tail = blocks[0:0] if block is None else blocks[block + 1 :]

    def _run(self, blocks: nn.ModuleList, x: torch.Tensor) -> torch.Tensor:
        if not self._batch_first:
            x = x.transpose(0, 1)
        for blk in blocks:
            x = blk(x)
        return x if self._batch_first else x.transpose(0, 1)

    def residual(self, images: torch.Tensor) -> torch.Tensor:
        """Residual stream after the configured block, all tokens: (B, tokens, width)."""
        return self._run(self._head, self.visual._embeds(images))

    def finish(self, residual: torch.Tensor, splice: Splice | None = None) -> torch.Tensor:
        """Image embedding (unnormalised) from the residual stream after the configured block."""
        if splice is not None:
            residual = torch.cat([splice(residual[:, 0])[:, None], residual[:, 1:]], dim=1)
        x = self._run(self._tail, residual)
        pooled, _ = self.visual._pool(x)
        return pooled @ self.visual.proj if self.visual.proj is not None else pooled

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        """The activation an SAE for this layer reads: CLS residual, or the final embedding."""
        if self.block is None:
            return self.visual(images)
        return self.residual(images)[:, 0]


def open_model(
    entry: dict, weights: Path | None = None, *, device: DeviceSpec = "auto"
) -> LoadedClip:
    """Load a ``models`` entry; ``weights`` is the built checkpoint for ``pretrained: build``."""
    seed = entry.get("seed", DEFAULT_SEED)
    if entry["pretrained"] == "build":
        if weights is None:
            raise ValueError(f"model {entry['arch']} has pretrained: build but no built weights")
        check_seed("build", seed)
        return load_clip(entry["arch"], str(weights), device=device)
    return load_clip(entry["arch"], entry["pretrained"], device=device, seed=seed)
