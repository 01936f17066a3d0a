"""Collages of the top-activating images of a latent, the thing people look at to judge a latent.

Layout (all sizes in pixels, ``PAD`` between tiles and around the grid)::

    width  = cols * tile + (cols + 1) * PAD
    height = TITLE_HEIGHT + rows * tile + (rows + 1) * PAD,   rows = ceil(n_images / cols)

so every collage of a run has the same width, and a reader (or a VLM prompt) can rely on it. Each
tile is centre-cropped to a square so that objects keep their aspect ratio, and carries its
activation value in its top-left corner.

A collage may end with a contrast row: ``n_weak`` weakly activating images under a strip of
``CONTRAST_HEIGHT`` that says so, which adds ``CONTRAST_HEIGHT + weak_rows * (tile + PAD)`` to the
height (``weak_rows = ceil(n_weak / cols)``). What a latent barely responds to tells its meaning
apart from what its top images merely share. Without weak images the layout is the one above.
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
CONTRAST_HEIGHT = 14
CONTRAST_TITLE = "weakly activating"
BACKGROUND = (255, 255, 255)
TEXT = (0, 0, 0)
LABEL_BOX = (0, 0, 0)
LABEL_TEXT = (255, 255, 255)


def collage_size(n_images: int, tile: int = 96, cols: int = 3, n_weak: int = 0) -> tuple[int, int]:
    """Return the (width, height) of a collage of ``n_images`` tiles (plus ``n_weak`` in the
    contrast row), per the module's layout."""
    rows = math.ceil(n_images / cols)
    height = TITLE_HEIGHT + rows * tile + (rows + 1) * PAD
    if n_weak:
        height += CONTRAST_HEIGHT + math.ceil(n_weak / cols) * (tile + PAD)
    return cols * tile + (cols + 1) * PAD, height


def tile_origin(index: int, tile: int = 96, cols: int = 3) -> tuple[int, int]:
    """Top-left pixel of tile ``index`` (row-major), so callers and tests can locate a tile."""
    row, col = divmod(index, cols)
    return PAD + col * (tile + PAD), TITLE_HEIGHT + PAD + row * (tile + PAD)


def weak_tile_origin(index: int, n_images: int, tile: int = 96, cols: int = 3) -> tuple[int, int]:
    """Top-left pixel of tile ``index`` of the contrast row under ``n_images`` top tiles."""
    x, y = tile_origin(index, tile, cols)
    return x, y + _contrast_top(n_images, tile, cols) + CONTRAST_HEIGHT - TITLE_HEIGHT


def _contrast_top(n_images: int, tile: int, cols: int) -> int:
    """First pixel row of the strip above the contrast row (just below the top grid)."""
    return collage_size(n_images, tile, cols)[1]


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
    *,
    weak_images: Sequence[Image.Image] = (),
    weak_activations: Sequence[float] = (),
) -> Image.Image:
    """Return an RGB grid of ``images`` (best first) with their activations and a title strip,
    and, given ``weak_images``, a contrast row of them under a strip that names it."""
    for what, pics, values in (("", images, activations), ("weak ", weak_images, weak_activations)):
        if len(pics) != len(values):
            raise ValueError(f"{len(pics)} {what}images but {len(values)} {what}activations")
    if tile < 1 or cols < 1:
        raise ValueError(f"tile and cols must be positive, got tile={tile}, cols={cols}")
    font = ImageFont.load_default()
    size = collage_size(len(images), tile, cols, len(weak_images))
    canvas = Image.new("RGB", size, BACKGROUND)
    draw = ImageDraw.Draw(canvas)
    draw.text((PAD, (TITLE_HEIGHT - 10) // 2), title, fill=TEXT, font=font)
    for index, (image, activation) in enumerate(zip(images, activations, strict=True)):
        _paste_tile(canvas, tile_origin(index, tile, cols), tile, image, f"{activation:.3g}")
    if weak_images:
        strip = _contrast_top(len(images), tile, cols)
        draw.text((PAD, strip + (CONTRAST_HEIGHT - 10) // 2), CONTRAST_TITLE, fill=TEXT, font=font)
    for index, (image, activation) in enumerate(zip(weak_images, weak_activations, strict=True)):
        origin = weak_tile_origin(index, len(images), tile, cols)
        _paste_tile(canvas, origin, tile, image, f"{activation:.3g}")
    return canvas


def _paste_tile(
    canvas: Image.Image,
    origin: tuple[int, int],
    tile: int,
    image: Image.Image,
    label: str,
) -> None:
    """Centre-crop ``image`` into the square tile at ``origin`` and label it."""
    square = ImageOps.fit(image.convert("RGB"), (tile, tile), Image.Resampling.BICUBIC)
    canvas.paste(square, origin)
    _label(ImageDraw.Draw(canvas), origin, label, ImageFont.load_default())


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


def collage_latents(stats: pl.DataFrame, n_frequent: int, chosen: Sequence[int] = ()) -> list[int]:
    """The ``chosen`` latents (in the given order, dead ones included: a configured latent is
    shown even when it is silent), then the ``n_frequent`` most frequent live ones not chosen."""
    d_sae = len(stats)
    bad = [latent for latent in chosen if not 0 <= latent < d_sae]
    if bad:
        raise ValueError(f"latents {bad} are out of range: the SAE has latents 0..{d_sae - 1}")
    picked = list(dict.fromkeys(chosen))
    frequent = select_latents(stats.filter(~pl.col("latent").is_in(picked)), n_frequent)
    return picked + frequent


def _ranked_rows(table: pl.DataFrame, latents: Sequence[int]) -> dict[int, pl.DataFrame]:
    wanted = table.filter(pl.col("latent").is_in(list(latents)))
    return {key[0]: frame.sort("rank") for key, frame in wanted.group_by("latent")}


def write_collages(
    top: pl.DataFrame,
    latents: Sequence[int],
    open_row: Callable[[int], Image.Image],
    out_dir: Path,
    titles: dict[int, str] | None = None,
    tile: int = 96,
    cols: int = 3,
    *,
    weak: pl.DataFrame | None = None,
) -> list[Path]:
    """Write ``latent_{id:05d}.jpg`` for each latent from its rows in ``top`` (best rank first).

    ``open_row`` maps a global activation row (the ``row`` column of the top table) to its image.
    ``weak`` (the same columns, e.g. ``weak_images.parquet``) adds each latent's contrast row.
    A latent without top rows still gets a collage (title only), so the output set is exactly the
    requested latents.
    """
    out_dir = Path(out_dir)
    titles = titles or {}
    groups = _ranked_rows(top, latents)
    weak_groups = _ranked_rows(weak, latents) if weak is not None else {}
    empty = top.clear()
    paths = []
    for latent in tqdm(latents, desc="collages", unit="latent"):
        rows = groups.get(latent, empty)
        weak_rows = weak_groups.get(latent, empty)
        collage = make_collage(
            [open_row(row) for row in rows["row"]],
            rows["activation"].to_list(),
            titles.get(latent, f"latent {latent}"),
            tile,
            cols,
            weak_images=[open_row(row) for row in weak_rows["row"]],
            weak_activations=weak_rows["activation"].to_list(),
        )
        path = out_dir / f"latent_{latent:05d}.jpg"
        with atomic_output(path) as tmp:
            collage.save(tmp, quality=90)
        paths.append(path)
    return paths
