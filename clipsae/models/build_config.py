"""The settings of an embedded-CLIP build, apart from the build itself.

The config checks construct one at every Snakefile parse; ``clipsae.models.embedded`` imports
torch and open_clip, this module does not.
"""

from __future__ import annotations

from dataclasses import dataclass

from clipsae.data.synthetic import DEFAULT_COLORS, parse_colors


@dataclass(frozen=True)
class BuildConfig:
    n_images: int = 8000
    steps: int = 400
    batch_size: int = 128
    lr: float = 1e-3
    seed: int = 0
    # Names from the synthetic palette; datasets the model reads should draw from the same ones.
    colors: tuple[str, ...] = tuple(DEFAULT_COLORS)

    def __post_init__(self) -> None:
        """Configs and the command line give a list; an unknown name fails here, not mid-build."""
        object.__setattr__(self, "colors", tuple(self.colors))
        parse_colors(self.colors)
