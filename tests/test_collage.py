"""Collage geometry, tile placement and the files written per latent."""

from __future__ import annotations

import math

import numpy as np
import polars as pl
import pytest
from PIL import Image

from clipsae.interpret.collage import (
    BACKGROUND,
    CONTRAST_HEIGHT,
    LABEL_BOX,
    PAD,
    TITLE_HEIGHT,
    collage_latents,
    collage_size,
    default_titles,
    make_collage,
    select_latents,
    tile_origin,
    weak_tile_origin,
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


@pytest.mark.parametrize(("n", "n_weak", "cols"), [(9, 3, 3), (5, 2, 3), (4, 5, 2)])
def test_contrast_row_sits_under_the_grid_with_its_own_images(n: int, n_weak: int, cols: int):
    tile = 30
    weak = [_solid(i + 2) for i in range(n_weak)]
    collage = make_collage(
        [_solid(i) for i in range(n)],
        [2.0] * n,
        "t",
        tile,
        cols,
        weak_images=weak,
        weak_activations=[0.1] * n_weak,
    )
    plain_height = collage_size(n, tile, cols)[1]
    weak_rows = math.ceil(n_weak / cols)
    assert collage.size == collage_size(n, tile, cols, n_weak)
    assert collage.size[1] == plain_height + CONTRAST_HEIGHT + weak_rows * (tile + PAD)
    pixels = np.asarray(collage)
    for index in range(n):  # the top grid is where it is without a contrast row
        x, y = tile_origin(index, tile, cols)
        assert (pixels[y + tile // 2 : y + tile, x : x + tile] == COLOURS[index % 5]).all()
    strip = pixels[plain_height : plain_height + CONTRAST_HEIGHT]
    assert (strip < 128).any(), "the contrast strip says what the row is"
    for index in range(n_weak):
        x, y = weak_tile_origin(index, n, tile, cols)
        assert y >= plain_height + CONTRAST_HEIGHT
        block = pixels[y + tile // 2 : y + tile, x : x + tile]
        assert (block == COLOURS[(index + 2) % 5]).all(), f"weak tile {index}"


def test_make_collage_rejects_mismatched_weak_lengths() -> None:
    with pytest.raises(ValueError, match="1 weak images but 0 weak activations"):
        make_collage([_solid(0)], [1.0], "t", weak_images=[_solid(1)])


def test_collage_latents_puts_chosen_first_then_frequent() -> None:
    assert collage_latents(_stats(), 2, [2, 0, 2]) == [2, 0, 1, 3]
    assert collage_latents(_stats(), 3) == select_latents(_stats(), 3)
    with pytest.raises(ValueError, match=r"latents \[5\] are out of range.*0\.\.4"):
        collage_latents(_stats(), 2, [1, 5])


def test_write_collages_adds_the_weak_rows_as_contrast(tmp_path) -> None:
    top = pl.DataFrame({"latent": [3, 3], "rank": [0, 1], "row": [0, 1], "activation": [5.0, 4.0]})
    weak = pl.DataFrame(
        {"latent": [3, 3, 1], "rank": [1, 0, 0], "row": [4, 3, 2], "activation": [0.1, 0.2, 0.3]}
    )
    opened: list[int] = []

    def open_row(row: int) -> Image.Image:
        opened.append(row)
        return _solid(row)

    (path,) = write_collages(top, [3], open_row, tmp_path, tile=32, weak=weak)
    assert opened == [0, 1, 3, 4]  # top rows, then the weak ones by rank; latent 1 not asked for
    with Image.open(path) as image:
        assert image.size == collage_size(2, 32, 3, n_weak=2)
        x, y = weak_tile_origin(1, 2, 32, 3)
        centre = np.asarray(image)[y + 24, x + 16].astype(int)
        assert np.abs(centre - COLOURS[4]).max() < 12  # the second weak tile shows row 4
