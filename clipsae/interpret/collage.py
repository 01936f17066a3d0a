"""Collages of the top-activating images of a latent, the thing people look at to judge a latent.

Layout (all sizes in pixels, ``PAD`` between tiles and around the grid)::

    width  = cols * tile + (cols + 1) * PAD
    height = TITLE_HEIGHT + rows * tile + (rows + 1) * PAD,   rows = ceil(n_images / cols)

so every collage of a run has the same width, and a reader (or a VLM prompt) can rely on it. Each
tile is centre-cropped to a square so that objects keep their aspect ratio, and carries its
activation value in its top-left corner.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from pathlib import Path

import polars as pl
from PIL import Image, ImageDraw, ImageFont, ImageOps
from tqdm import tqdm

from clipsae.runtime.atomic import atomic_output

PAD = 4
TITLE_HEIGHT = 18
BACKGROUND = (255, 255, 255)
TEXT = (0, 0, 0)
LABEL_BOX = (0, 0, 0)
LABEL_TEXT = (255, 255, 255)


def collage_size(n_images: int, tile: int = 96, cols: int = 3) -> tuple[int, int]:
    """Return the (width, height) of a collage of ``n_images`` tiles, per the module's layout."""
    rows = math.ceil(n_images / cols)
    return cols * tile + (cols + 1) * PAD, TITLE_HEIGHT + rows * tile + (rows + 1) * PAD


def tile_origin(index: int, tile: int = 96, cols: int = 3) -> tuple[int, int]:
    """Top-left pixel of tile ``index`` (row-major), so callers and tests can locate a tile."""
    row, col = divmod(index, cols)
    return PAD + col * (tile + PAD), TITLE_HEIGHT + PAD + row * (tile + PAD)


def _label(draw: ImageDraw.ImageDraw, origin: tuple[int, int], text: str, font) -> None:
    """Draw ``text`` on a dark box so it stays readable on any image."""
    x, y = origin
    *_, right, bottom = draw.textbbox((x + 2, y + 1), text, font=font)
    draw.rectangle((x, y, right + 2, bottom + 1), fill=LABEL_BOX)
    draw.text((x + 2, y + 1), text, fill=LABEL_TEXT, font=font)


def make_collage(
    images: Sequence[Image.Image],
    activations: Sequence[float],
    title: str,
    tile: int = 96,
    cols: int = 3,
) -> Image.Image:
    """Return an RGB grid of ``images`` (best first) with their activations and a title strip."""
    if len(images) != len(activations):
        raise ValueError(f"{len(images)} images but {len(activations)} activations")
    if tile < 1 or cols < 1:
        raise ValueError(f"tile and cols must be positive, got tile={tile}, cols={cols}")
    font = ImageFont.load_default()
    canvas = Image.new("RGB", collage_size(len(images), tile, cols), BACKGROUND)
    draw = ImageDraw.Draw(canvas)
    draw.text((PAD, (TITLE_HEIGHT - 10) // 2), title, fill=TEXT, font=font)
    for index, (image, activation) in enumerate(zip(images, activations, strict=True)):
        origin = tile_origin(index, tile, cols)
        square = ImageOps.fit(image.convert("RGB"), (tile, tile), Image.Resampling.BICUBIC)
        canvas.paste(square, origin)
        _label(draw, origin, f"{activation:.3g}", font)
    return canvas


def select_latents(stats: pl.DataFrame, n: int, by: str = "frequency") -> list[int]:
    """Pick ``n`` live latents with the largest ``by`` (ties: lower latent id first).

    Dead latents are excluded because they have no images to show.
    """
    if by not in stats.columns:
        raise ValueError(f"cannot select latents by {by!r}: stats has columns {stats.columns}")
    live = stats.filter(pl.col("fire_count") > 0)
    ranked = live.sort([by, "latent"], descending=[True, False])
    return ranked["latent"].head(n).to_list()


def default_titles(stats: pl.DataFrame) -> dict[int, str]:
    """Titles such as ``latent 123 · f=0.021`` so a collage shows how often its latent fires."""
    return {
        latent: f"latent {latent} · f={frequency:.3g}"
        for latent, frequency in zip(stats["latent"], stats["frequency"], strict=True)
    }


def write_collages(
    top: pl.DataFrame,
    latents: Sequence[int],
    open_row: Callable[[int], Image.Image],
    out_dir: Path,
    titles: dict[int, str] | None = None,
    tile: int = 96,
    cols: int = 3,
) -> list[Path]:
    """Write ``latent_{id:05d}.jpg`` for each latent from its rows in ``top`` (best rank first).

    ``open_row`` maps a global activation row (the ``row`` column of the top table) to its image.
    A latent without top rows still gets a collage (title only), so the output set is exactly the
    requested latents.
    """
    out_dir = Path(out_dir)
    titles = titles or {}
    by_latent = top.filter(pl.col("latent").is_in(list(latents))).sort(["latent", "rank"])
    groups = {key[0]: frame.sort("rank") for key, frame in by_latent.group_by("latent")}
    paths = []
    for latent in tqdm(latents, desc="collages", unit="latent"):
        rows = groups.get(latent, by_latent.clear())
        images = [open_row(row) for row in rows["row"]]
        collage = make_collage(
            images, rows["activation"].to_list(), titles.get(latent, f"latent {latent}"), tile, cols
        )
        path = out_dir / f"latent_{latent:05d}.jpg"
        with atomic_output(path) as tmp:
            collage.save(tmp, quality=90)
        paths.append(path)
    return paths
