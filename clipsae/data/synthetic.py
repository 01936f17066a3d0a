"""Generated coloured shapes on coloured backgrounds: the offline demo's dataset.

Each image is a pure function of (seed, split, index): its random generator is seeded from those
three numbers, so any process renders any record to the same bytes in any order, and nothing is
stored on disk. The same ``sample_attributes`` + ``render`` pair serves code that needs endless
image-caption pairs (training a tiny CLIP on ``caption``) without a second generator.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np
from PIL import Image, ImageDraw

from clipsae.data.base import SPLITS, ImageDataset, Record, register, resolve_spec

RGB = tuple[int, int, int]

# Colours a spec may name. Any two are at least 64 apart in RGB, about twice the furthest the
# default jitter (+-20 per channel, 35 in all) moves one colour, so names stay apart in the images.
# The first eight are the default palette: a longer one gives an SAE more concepts to find
# (bench/README.md, "Dead latents") and the embedded model a harder zero-shot task.
PALETTE: dict[str, RGB] = {
    "red": (220, 40, 40),
    "green": (40, 170, 60),
    "blue": (40, 80, 220),
    "yellow": (240, 220, 40),
    "purple": (140, 60, 180),
    "orange": (245, 140, 30),
    "white": (245, 245, 245),
    "black": (20, 20, 20),
    "pink": (250, 160, 200),
    "brown": (140, 85, 40),
    "gray": (128, 128, 128),
    "cyan": (60, 220, 230),
    "magenta": (220, 40, 200),
    "navy": (20, 30, 110),
    "teal": (0, 128, 128),
    "lime": (170, 230, 50),
    "olive": (110, 130, 0),
    "salmon": (250, 128, 114),
    "beige": (225, 205, 160),
    "azure": (130, 180, 250),
    "mint": (150, 240, 190),
    "lavender": (190, 160, 240),
    "tan": (190, 140, 90),
    "indigo": (75, 0, 130),
}
DEFAULT_COLORS: dict[str, RGB] = dict(list(PALETTE.items())[:8])
LABEL_BY = ("shape", "color", "shape_color")
# Drawn at twice the size and box-filtered down: cheap anti-aliasing, so edges are not a shortcut.
_SUPERSAMPLE = 2


def _regular(n: int) -> np.ndarray:
    angles = 2 * np.pi * np.arange(n) / n
    return np.stack([np.cos(angles), np.sin(angles)], axis=1)


def _star(points: int, inner: float) -> np.ndarray:
    angles = np.pi * np.arange(2 * points) / points
    radii = np.where(np.arange(2 * points) % 2 == 0, 1.0, inner)
    return np.stack([radii * np.cos(angles), radii * np.sin(angles)], axis=1)


def _cross(arm: float) -> np.ndarray:
    # One arm's end and the inner corner after it, turned by 90 degrees four times.
    quarter = np.array([(-arm, -1.0), (arm, -1.0), (arm, -arm)])
    quarter_turn = np.array([[0.0, -1.0], [1.0, 0.0]])
    return np.concatenate([quarter @ np.linalg.matrix_power(quarter_turn, k).T for k in range(4)])


# Unit-radius outlines; circle and ring are drawn as ellipses instead.
_POLYGONS: dict[str, np.ndarray] = {
    "square": _regular(4),
    "triangle": _regular(3),
    "star": _star(5, 0.45),
    "cross": _cross(0.33),
}
SHAPES = ("circle", "square", "triangle", "star", "cross", "ring")


@dataclass(frozen=True)
class SyntheticSpec:
    """Parameters of the generator; ``noise`` is the per-pixel Gaussian std on the 0-255 scale."""

    n_train: int = 2000
    n_test: int = 500
    image_size: int = 64
    seed: int = 0
    shapes: tuple[str, ...] = SHAPES
    colors: tuple[tuple[str, RGB], ...] = tuple(DEFAULT_COLORS.items())
    label_by: str = "shape"
    noise: float = 8.0
    color_jitter: int = 20

    @property
    def palette(self) -> dict[str, RGB]:
        return dict(self.colors)

    @classmethod
    def from_dict(cls, name: str, spec: Mapping[str, Any]) -> SyntheticSpec:
        """Validate a config entry; ``colors`` may list palette names or map names to RGB."""
        defaults = {k: getattr(cls, k) for k in cls.__dataclass_fields__}
        merged = resolve_spec(name, spec, required=(), defaults=defaults)
        merged.pop("source", None)
        merged["shapes"] = tuple(merged["shapes"])
        try:
            merged["colors"] = parse_colors(merged["colors"])
        except ValueError as exc:
            raise ValueError(f"dataset {name!r} (source 'synthetic'): {exc}") from None
        parsed = cls(**merged)
        parsed.check(name)
        return parsed

    def check(self, name: str) -> None:
        unknown = sorted(set(self.shapes) - set(SHAPES))
        problems = [
            f"unknown shapes {unknown} (known: {list(SHAPES)})" if unknown else "",
            f"label_by must be one of {list(LABEL_BY)}" if self.label_by not in LABEL_BY else "",
            "needs at least 2 colors (the background differs from the shape)"
            if len(self.colors) < 2
            else "",
            "image_size must be at least 8" if self.image_size < 8 else "",
            "n_train and n_test must be >= 0" if min(self.n_train, self.n_test) < 0 else "",
        ]
        problems = [p for p in problems if p]
        if problems:
            raise ValueError(f"dataset {name!r} (source 'synthetic'): " + "; ".join(problems))


def parse_colors(colors: Any) -> tuple[tuple[str, RGB], ...]:
    """(name, RGB) pairs from names in ``PALETTE`` or from a mapping name -> [r, g, b]."""
    if isinstance(colors, Mapping):
        return tuple((str(k), tuple(int(c) for c in v)) for k, v in colors.items())
    if isinstance(colors, tuple) and all(isinstance(c, tuple) for c in colors):
        return colors
    unknown = [c for c in colors if c not in PALETTE]
    if unknown:
        raise ValueError(
            f"colors {unknown} are not in the palette {list(PALETTE)}; "
            "give a mapping name -> [r, g, b] instead"
        )
    return tuple((c, PALETTE[c]) for c in colors)


def sample_attributes(rng: np.random.Generator, spec: SyntheticSpec) -> dict[str, str]:
    """Draw shape, colour and a background colour that differs from the shape's."""
    names = [c for c, _ in spec.colors]
    shape = spec.shapes[int(rng.integers(len(spec.shapes)))]
    color = names[int(rng.integers(len(names)))]
    others = [c for c in names if c != color]
    background = others[int(rng.integers(len(others)))]
    return {"shape": shape, "color": color, "background": background}


def caption(attrs: Mapping[str, str]) -> str:
    """English caption of generated attributes, e.g. ``"an orange star on a blue background"``."""
    return f"{_article(attrs['color'])} {attrs['color']} {attrs['shape']} on " + (
        f"{_article(attrs['background'])} {attrs['background']} background"
    )


def _article(word: str) -> str:
    return "an" if word[:1].lower() in "aeiou" else "a"


def _jitter(rgb: RGB, rng: np.random.Generator, amount: int) -> RGB:
    shift = rng.integers(-amount, amount + 1, size=3) if amount else np.zeros(3, dtype=int)
    return tuple(int(v) for v in np.clip(np.asarray(rgb) + shift, 0, 255))


def render(
    attrs: Mapping[str, str],
    image_size: int,
    rng: np.random.Generator,
    palette: Mapping[str, RGB] = DEFAULT_COLORS,
    noise: float = 8.0,
    color_jitter: int = 20,
) -> Image.Image:
    """Draw ``attrs`` at a random position, size and rotation, with jittered colours and noise."""
    size = image_size * _SUPERSAMPLE
    background = _jitter(palette[attrs["background"]], rng, color_jitter)
    foreground = _jitter(palette[attrs["color"]], rng, color_jitter)
    radius = rng.uniform(0.18, 0.4) * size
    center = rng.uniform(radius, size - radius, size=2)
    angle = rng.uniform(0.0, 2 * np.pi)
    image = Image.new("RGB", (size, size), background)
    _draw_shape(ImageDraw.Draw(image), attrs["shape"], center, radius, angle, foreground)
    pixels = np.asarray(image.reduce(_SUPERSAMPLE), dtype=np.float32)
    if noise:
        pixels = pixels + rng.normal(0.0, noise, size=pixels.shape).astype(np.float32)
    return Image.fromarray(np.clip(np.rint(pixels), 0, 255).astype(np.uint8), "RGB")


def _draw_shape(
    draw: ImageDraw.ImageDraw,
    shape: str,
    center: np.ndarray,
    radius: float,
    angle: float,
    fill: RGB,
) -> None:
    box = [*(center - radius), *(center + radius)]
    if shape == "circle":
        draw.ellipse(box, fill=fill)
    elif shape == "ring":
        draw.ellipse(box, outline=fill, width=max(2, round(0.35 * radius)))
    else:
        rotation = np.array([[np.cos(angle), -np.sin(angle)], [np.sin(angle), np.cos(angle)]])
        points = _POLYGONS[shape] @ rotation.T * radius + center
        draw.polygon([tuple(p) for p in points.tolist()], fill=fill)


class SyntheticDataset(ImageDataset):
    """``n_train`` + ``n_test`` generated images, labelled by shape, colour or both."""

    def __init__(self, name: str, spec: SyntheticSpec) -> None:
        self.spec = spec
        colors = [c for c, _ in spec.colors]
        classes = {
            "shape": list(spec.shapes),
            "color": colors,
            "shape_color": [f"{c} {s}" for s in spec.shapes for c in colors],
        }[spec.label_by]
        super().__init__(name, classes)

    def _rng(self, split: str, index: int) -> np.random.Generator:
        return np.random.default_rng((self.spec.seed, SPLITS.index(split), index))

    def label(self, attrs: Mapping[str, str]) -> int:
        """Class index of ``attrs`` under the spec's ``label_by``."""
        if self.spec.label_by == "shape_color":
            return self.class_names.index(f"{attrs['color']} {attrs['shape']}")
        return self.class_names.index(attrs[self.spec.label_by])

    def records(self) -> list[Record]:
        counts = {"train": self.spec.n_train, "test": self.spec.n_test}
        records = []
        for split in SPLITS:
            for i in range(counts[split]):
                attrs = sample_attributes(self._rng(split, i), self.spec)
                records.append(
                    Record(
                        f"{split}-{i:06d}",
                        split,
                        self.label(attrs),
                        f"synthetic:{split}:{i}",
                        attrs,
                    )
                )
        return records

    def open_image(self, record: Record) -> Image.Image:
        _, split, index = record.source.split(":")
        rng = self._rng(split, int(index))
        attrs = sample_attributes(rng, self.spec)
        if attrs != record.attrs:
            raise ValueError(
                f"dataset {self.name!r}: record {record.id} has attributes {record.attrs} but the "
                f"spec generates {attrs}; the index was prepared with a different spec"
            )
        s = self.spec
        return render(attrs, s.image_size, rng, s.palette, s.noise, s.color_jitter)


@register("synthetic")
def build_synthetic(name: str, spec: dict[str, Any]) -> SyntheticDataset:
    return SyntheticDataset(name, SyntheticSpec.from_dict(name, spec))
