"""Collage geometry, tile placement and the files written per latent."""

from __future__ import annotations

import math

import numpy as np
import polars as pl
import pytest
from PIL import Image

from clipsae.interpret.collage import (
    BACKGROUND,
    LABEL_BOX,
    PAD,
    TITLE_HEIGHT,
    collage_size,
    default_titles,
    make_collage,
    select_latents,
    tile_origin,
    write_collages,
)

COLOURS = [(200, 30, 30), (30, 200, 30), (30, 30, 200), (200, 200, 30), (30, 200, 200)]


def _solid(index: int, size: tuple[int, int] = (40, 30)) -> Image.Image:
    return Image.new("RGB", size, COLOURS[index % len(COLOURS)])


@pytest.mark.parametrize(("n", "tile", "cols"), [(9, 96, 3), (5, 32, 3), (7, 50, 4), (1, 20, 1)])
def test_collage_pixel_size_follows_documented_layout(n: int, tile: int, cols: int) -> None:
    collage = make_collage([_solid(i) for i in range(n)], [1.0] * n, "t", tile, cols)
    rows = math.ceil(n / cols)
    assert collage.size == (
        cols * tile + (cols + 1) * PAD,
        TITLE_HEIGHT + rows * (tile + PAD) + PAD,
    )
    assert collage.size == collage_size(n, tile, cols)
    assert collage.mode == "RGB"


@pytest.mark.parametrize(("n", "cols"), [(5, 3), (6, 3), (4, 2)])
def test_each_image_fills_exactly_one_tile(n: int, cols: int) -> None:
    tile = 40
    collage = np.asarray(make_collage([_solid(i) for i in range(n)], [0.5] * n, "", tile, cols))
    slots = cols * math.ceil(n / cols)
    for index in range(slots):
        x, y = tile_origin(index, tile, cols)
        block = collage[y + tile // 2 : y + tile, x : x + tile]  # lower half: clear of the label
        expected = COLOURS[index % len(COLOURS)] if index < n else BACKGROUND
        assert (block == expected).all(), f"tile {index}"


def test_activation_label_and_title_are_drawn() -> None:
    white = Image.new("RGB", (64, 64), (255, 255, 255))
    collage = np.asarray(make_collage([white], [3.25], "latent 7 · f=0.5", tile=64, cols=1))
    x, y = tile_origin(0, 64, 1)
    assert (collage[y + 1, x + 1] == LABEL_BOX).all()
    assert (collage[:TITLE_HEIGHT] < 128).any(), "title strip has no dark text pixels"
    assert (collage[y + 40 :, x : x + 64] == 255).all()


def test_make_collage_rejects_mismatched_lengths() -> None:
    with pytest.raises(ValueError, match="2 images but 1 activations"):
        make_collage([_solid(0), _solid(1)], [1.0], "t")


def _stats() -> pl.DataFrame:
    return pl.DataFrame(
        {
            "latent": [0, 1, 2, 3, 4],
            "frequency": [0.0, 0.3, 0.1, 0.3, 0.05],
            "fire_count": [0, 30, 10, 30, 5],
        }
    )


def test_select_latents_most_frequent_live_first() -> None:
    assert select_latents(_stats(), 3) == [1, 3, 2]
    assert select_latents(_stats(), 10) == [1, 3, 2, 4]
    with pytest.raises(ValueError, match="no_such_column"):
        select_latents(_stats(), 3, by="no_such_column")


def test_default_titles_show_frequency() -> None:
    assert default_titles(_stats())[2] == "latent 2 · f=0.1"


def test_write_collages_writes_one_jpeg_per_latent(tmp_path) -> None:
    top = pl.DataFrame(
        {
            "latent": [3, 3, 3, 1, 9],
            "rank": [2, 0, 1, 0, 0],
            "row": [12, 10, 11, 20, 30],
            "activation": [0.5, 2.0, 1.0, 4.0, 1.0],
        }
    )
    opened: list[int] = []

    def open_row(row: int) -> Image.Image:
        opened.append(row)
        return _solid(row)

    paths = write_collages(top, [3, 1, 5], open_row, tmp_path / "c", {3: "three"}, tile=32)
    assert [p.name for p in paths] == ["latent_00003.jpg", "latent_00001.jpg", "latent_00005.jpg"]
    assert opened == [10, 11, 12, 20]  # rank order, and only the requested latents
    assert sorted(p.name for p in (tmp_path / "c").iterdir()) == sorted(p.name for p in paths)
    with Image.open(paths[0]) as image:
        assert image.size == collage_size(3, 32, 3)
        x, y = tile_origin(0, 32, 3)
        centre = np.asarray(image)[y + 24, x + 16].astype(int)
        assert np.abs(centre - COLOURS[10 % len(COLOURS)]).max() < 12  # JPEG tolerance
    with Image.open(paths[2]) as empty:
        assert empty.size == collage_size(0, 32, 3)
