"""Turning any image file into RGB pixels, or into a named reason why it cannot be.

Real folders hold CMYK JPEGs, palette GIFs, 16-bit scans, phone photos stored sideways with an
EXIF orientation tag, half-copied files and the odd ``.jpg`` that is an HTML error page. One
policy covers them all: convert whatever has a faithful RGB reading, and raise ``BadImage`` with a
short, stable ``reason`` for the rest, so callers can skip and count instead of crashing a
many-hour extraction on image 3,000,017.
"""

from __future__ import annotations

import contextlib
import io
import warnings
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image, ImageOps, UnidentifiedImageError

# Pillow's own default limit (about 0.25 GB of RGB); the dataset option ``max_image_pixels``
# changes it per dataset.
DEFAULT_MAX_IMAGE_PIXELS = 89_478_485
# Transparent pixels are composited on white: a fixed colour keeps activations reproducible, and
# white is what a browser shows for most transparent web images that CLIP was trained on.
ALPHA_BACKGROUND = (255, 255, 255)
_ALPHA_MODES = frozenset({"RGBA", "RGBa", "LA", "La", "PA", "P"})

# The closed set of reasons, stable strings that ``skipped.parquet`` can be grouped by.
REASONS = (
    "empty_file",  # zero bytes
    "unreadable",  # the file cannot be opened (missing, a directory, no permission)
    "not_an_image",  # no image format recognises the bytes
    "truncated",  # the data stops early (interrupted copy or download)
    "decode_error",  # recognised but corrupt, or in a mode with no RGB reading
    "too_large",  # more pixels than max_image_pixels (a decompression bomb, or just huge)
)
POLICY_KEYS = ("strict", "max_image_pixels")


class BadImage(ValueError):
    """An image with no RGB reading; ``reason`` is one of ``REASONS``."""

    def __init__(self, reason: str, detail: str) -> None:
        super().__init__(f"{reason}: {detail}")
        self.reason, self.detail = reason, detail

    def __reduce__(self) -> tuple[type, tuple[str, str]]:
        # DataLoader workers send it to the main process, which needs both fields back.
        return BadImage, (self.reason, self.detail)


@dataclass(frozen=True)
class ImagePolicy:
    """Per-dataset options: ``strict`` turns every skip into an error; the pixel limit."""

    strict: bool = False
    max_image_pixels: int = DEFAULT_MAX_IMAGE_PIXELS

    @classmethod
    def from_spec(cls, name: str, spec: Mapping[str, Any]) -> ImagePolicy:
        """Read the policy keys of a dataset spec, rejecting values of the wrong type."""
        policy = cls(**{k: spec[k] for k in POLICY_KEYS if k in spec})
        if not isinstance(policy.strict, bool):
            raise ValueError(f"dataset {name!r}: strict must be true or false")
        pixels = policy.max_image_pixels
        if isinstance(pixels, bool) or not isinstance(pixels, int) or pixels < 1:
            raise ValueError(f"dataset {name!r}: max_image_pixels must be a positive integer")
        return policy


def load_rgb(source: str | Path | bytes, max_pixels: int = DEFAULT_MAX_IMAGE_PIXELS) -> Image.Image:
    """Decode an image file or encoded bytes to upright RGB, or raise ``BadImage``.

    Every source decodes through here, so the policy for bad files has exactly one place to live.
    """
    if (len(source) if isinstance(source, bytes) else _file_size(source)) == 0:
        raise BadImage("empty_file", "the file has zero bytes")
    try:
        with _pixel_limit(max_pixels), Image.open(_stream(source)) as image:
            _check_pixels(image, max_pixels)
            image.load()
            return to_rgb(ImageOps.exif_transpose(image))
    except BadImage:
        raise
    except (Image.DecompressionBombError, OSError, SyntaxError, ValueError, EOFError) as exc:
        raise _bad(exc, max_pixels) from exc


def _bad(exc: Exception, max_pixels: int) -> BadImage:
    """Name what went wrong; Pillow's exception types only partly say it."""
    if isinstance(exc, Image.DecompressionBombError):
        return BadImage("too_large", f"over max_image_pixels {max_pixels}: {exc}")
    if isinstance(exc, UnidentifiedImageError):  # its message is just the file's name
        return BadImage("not_an_image", "no image format recognises its bytes")
    detail = f"{type(exc).__name__}: {exc}"
    if isinstance(exc, (FileNotFoundError, PermissionError, IsADirectoryError)):
        return BadImage("unreadable", detail)
    return BadImage("truncated" if "truncated" in str(exc).lower() else "decode_error", detail)


def _file_size(path: str | Path) -> int:
    try:
        return Path(path).stat().st_size
    except OSError as exc:
        raise BadImage("unreadable", f"{type(exc).__name__}: {exc}") from exc


def _stream(source: str | Path | bytes) -> str | Path | io.BytesIO:
    return io.BytesIO(source) if isinstance(source, bytes) else source


@contextlib.contextmanager
def _pixel_limit(max_pixels: int) -> Iterator[None]:
    """Make Pillow's own bomb check (run while opening, before we see the size) use our limit.

    Pillow reads the limit from a module global and warns between 1x and 2x of it; we reject
    everything above 1x ourselves, so the warning is noise. The global is restored on exit; it
    is per process, and images are decoded by one thread per process (DataLoader workers are
    processes).
    """
    previous = Image.MAX_IMAGE_PIXELS
    Image.MAX_IMAGE_PIXELS = max_pixels
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", Image.DecompressionBombWarning)
            yield
    finally:
        Image.MAX_IMAGE_PIXELS = previous


def _check_pixels(image: Image.Image, max_pixels: int) -> None:
    width, height = image.size
    if width * height > max_pixels:
        raise BadImage(
            "too_large",
            f"{width}x{height} = {width * height} pixels > max_image_pixels {max_pixels}",
        )


def to_rgb(image: Image.Image) -> Image.Image:
    """The RGB reading of a decoded image in any mode Pillow produces.

    Pillow's plain ``convert("RGB")`` clips 16-bit grey to white and drops alpha to whatever
    colour the transparent pixels happen to store, so those two cases are handled here.
    """
    if image.mode == "RGB":
        return image
    if image.mode.startswith("I"):  # I, I;16, I;16B, I;16L, I;16N: integer grey
        return _grey16_to_rgb(image)
    if image.mode in _ALPHA_MODES or "transparency" in image.info:
        background = Image.new("RGBA", image.size, (*ALPHA_BACKGROUND, 255))
        return Image.alpha_composite(background, image.convert("RGBA")).convert("RGB")
    return image.convert("RGB")


def _grey16_to_rgb(image: Image.Image) -> Image.Image:
    """Scale the 16-bit range to 8 bits (65535 -> 255), as a viewer would show it.

    32-bit ``I`` images are read the same way: that is how Pillow opens 16-bit PNGs and TIFFs.
    """
    values = np.asarray(image, dtype=np.float64)
    grey = np.clip(np.rint(values / 257.0), 0, 255).astype(np.uint8)
    return Image.fromarray(grey, "L").convert("RGB")
