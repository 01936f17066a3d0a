"""Step ``build_embedded_clip``: train the shipped tiny CLIP on generated captions."""

from __future__ import annotations

from pathlib import Path

from clipsae.models.embedded import BuildConfig, build_embedded_clip
from clipsae.runtime.device import DeviceSpec


def build_model(*, arch: str, build: dict, out_dir: Path, device: DeviceSpec = "auto") -> None:
    build_embedded_clip(arch, Path(out_dir), BuildConfig(**build), device=device)
