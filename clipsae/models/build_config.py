"""The settings of an embedded-CLIP build, apart from the build itself.

The config checks construct one at every Snakefile parse; ``clipsae.models.embedded`` imports
torch and open_clip, this module does not.
"""

from __future__ import annotations

from dataclasses import dataclass

from clipsae.data.synthetic import DEFAULT_COLORS, parse_colors

# Fields a caption template may use: the generated attributes and the full ``caption``.
CAPTION_FIELDS = ("caption", "color", "shape", "background")
# Several phrasings per image, one drawn per step, so that zero-shot prompts about one attribute
# ("a {} shape.", "a photo of a {}.") match text the model was trained on.
DEFAULT_CAPTIONS: tuple[str, ...] = (
    "{caption}",
    "a photo of a {color} {shape}.",
    "a photo of a {shape}.",
    "a {color} shape.",
    "a {background} background.",
)
# ``clip``: open_clip's ClipLoss, where every other image of the batch is a negative, even one
# whose caption is the same text; ``multi_positive``: every image whose caption under the drawn
# text's template is that same text is a positive, target mass spread evenly (UniCL / SupCon).
LOSSES = ("clip", "multi_positive")


@dataclass(frozen=True)
class BuildConfig:
    n_images: int = 8000
    steps: int = 400
    batch_size: int = 128
    lr: float = 1e-3
    seed: int = 0
    # Names from the synthetic palette; datasets the model reads should draw from the same ones.
    colors: tuple[str, ...] = tuple(DEFAULT_COLORS)
    # Caption templates over ``CAPTION_FIELDS``; repeating one makes it more frequent.
    captions: tuple[str, ...] = DEFAULT_CAPTIONS
    # Contrastive loss, one of ``LOSSES``.
    loss: str = "clip"

    def __post_init__(self) -> None:
        """Configs and the command line give lists; an unknown name or template field fails
        here, not mid-build."""
        object.__setattr__(self, "colors", tuple(self.colors))
        object.__setattr__(self, "captions", tuple(self.captions))
        parse_colors(self.colors)
        if self.loss not in LOSSES:
            raise ValueError(f"build.loss: {self.loss!r} is not one of {list(LOSSES)}")
        if not self.captions:
            raise ValueError("build.captions: needs at least one caption template")
        example = dict.fromkeys(CAPTION_FIELDS, "x")
        for template in self.captions:
            try:
                template.format(**example)
            except (KeyError, IndexError, ValueError) as exc:
                raise ValueError(
                    f"build.captions: template {template!r} is invalid ({exc!r}); "
                    f"it may use the fields {list(CAPTION_FIELDS)}"
                ) from None
