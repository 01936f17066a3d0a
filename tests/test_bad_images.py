"""Bad and unusual images: conversion to RGB, skip reasons, and extraction around the bad ones.

Every file is generated here. The corpus is an imagefolder dataset holding each kind of bad file
the image policy knows next to good files in every mode it converts; extraction over it must
give the same rows as extraction over the good files alone.
"""

from __future__ import annotations

import io
import json
import logging
import re
from pathlib import Path

import numpy as np
import polars as pl
import pytest
import torch
from PIL import Image

from clipsae.activations.extract import extract_activations, iter_image_batches
from clipsae.activations.shards import load_activations
from clipsae.data import BadImage, build_dataset
from clipsae.data.images import ALPHA_BACKGROUND, load_rgb
from clipsae.models.clip import load_clip

MAX_PIXELS = 4096  # the corpus's limit: good images are 32x32 = 1024 pixels


def _noise(seed: int, size: tuple[int, int] = (32, 32)) -> Image.Image:
    rng = np.random.default_rng(seed)
    return Image.fromarray(rng.integers(0, 256, (size[1], size[0], 3), dtype=np.uint8), "RGB")


def _jpeg_bytes(image: Image.Image, **kwargs) -> bytes:
    buffer = io.BytesIO()
    image.save(buffer, "JPEG", **kwargs)
    return buffer.getvalue()


def _rotated_jpeg() -> bytes:
    """A 32x24 JPEG whose EXIF says 'rotate 90 degrees clockwise to display'."""
    exif = Image.Exif()
    exif[0x0112] = 6  # Orientation
    return _jpeg_bytes(_noise(7, (32, 24)), exif=exif.tobytes(), quality=95)


def _palette_with_transparency() -> Image.Image:
    image = _noise(4).convert("P", palette=Image.Palette.ADAPTIVE, colors=16)
    image.info["transparency"] = 0
    return image


GOOD = {
    "a/rgb0.png": lambda p: _noise(0).save(p),
    "a/rgb1.jpg": lambda p: _noise(1).save(p, quality=95),
    "a/cmyk.jpg": lambda p: _noise(2).convert("CMYK").save(p, quality=95),
    "a/grey.png": lambda p: _noise(3).convert("L").save(p),
    "a/palette.png": lambda p: _palette_with_transparency().save(p),
    "b/la.png": lambda p: _noise(5).convert("LA").save(p),
    "b/rgba.png": lambda p: _noise(6).convert("RGBA").save(p),
    "b/rotated.jpg": lambda p: p.write_bytes(_rotated_jpeg()),
    "b/grey16.png": lambda p: Image.fromarray(
        np.arange(1024, dtype=np.uint16).reshape(32, 32) * 64
    ).save(p),
    "b/sub/rgb2.png": lambda p: _noise(8).save(p),
}
BAD = {
    "a/truncated.jpg": (lambda p: p.write_bytes(_jpeg_bytes(_noise(9))[:600]), "truncated"),
    "a/garbage.jpg": (
        lambda p: p.write_bytes(np.random.default_rng(0).bytes(2000)),
        "not_an_image",
    ),
    "b/empty.png": (lambda p: p.write_bytes(b""), "empty_file"),
    "b/notes.png": (lambda p: p.write_text("<html>404 Not Found</html>"), "not_an_image"),
    # Above 2x the limit Pillow itself refuses while opening; between 1x and 2x our check does.
    "b/huge.png": (lambda p: Image.new("RGB", (200, 200)).save(p), "too_large"),
    "b/big.png": (lambda p: Image.new("RGB", (80, 80)).save(p), "too_large"),
}


def _corpus(root: Path, with_bad: bool) -> Path:
    writers = {**GOOD, **({k: w for k, (w, _) in BAD.items()} if with_bad else {})}
    for rel, write in writers.items():
        (root / rel).parent.mkdir(parents=True, exist_ok=True)
        write(root / rel)
    (root / "a" / "readme.txt").write_text("not an image, and not named like one")
    return root


def _spec(root: Path, **extra) -> dict:
    return {
        "source": "imagefolder",
        "root": str(root),
        "test_fraction": 0.0,
        "max_image_pixels": MAX_PIXELS,
        **extra,
    }


# --- conversion of unusual modes -------------------------------------------------------------


def _png(image: Image.Image) -> bytes:
    buffer = io.BytesIO()
    image.save(buffer, "PNG")
    return buffer.getvalue()


def test_16_bit_grey_is_scaled_not_clipped():
    grey = Image.fromarray(np.array([[0, 257 * 100, 65535]], dtype=np.uint16))
    assert grey.mode == "I;16"
    rgb = load_rgb(_png(grey))
    assert rgb.mode == "RGB"
    assert [rgb.getpixel((x, 0)) for x in range(3)] == [(0, 0, 0), (100,) * 3, (255,) * 3]


@pytest.mark.parametrize("mode", ["RGBA", "LA"])
def test_alpha_is_composited_on_the_fixed_background(mode):
    pixels = np.array([[[200, 40, 0, 0], [200, 40, 0, 255], [200, 40, 0, 128]]], dtype=np.uint8)
    image = Image.fromarray(pixels, "RGBA").convert(mode)
    rgb = load_rgb(_png(image))
    opaque = image.convert("RGB").getpixel((1, 0))
    assert rgb.getpixel((0, 0)) == ALPHA_BACKGROUND  # not the colour stored under alpha 0
    assert rgb.getpixel((1, 0)) == opaque
    half = rgb.getpixel((2, 0))
    for channel, (fg, bg) in enumerate(zip(opaque, ALPHA_BACKGROUND, strict=True)):
        assert abs(half[channel] - (fg * 128 + bg * 127) / 255) <= 1


def test_palette_transparency_goes_through_rgba():
    image = Image.new("P", (2, 1))
    image.putpalette([10, 20, 30, 200, 100, 50] + [0] * 762)
    image.putpixel((1, 0), 1)
    image.info["transparency"] = 0
    rgb = load_rgb(_png(image))
    assert [rgb.getpixel((x, 0)) for x in range(2)] == [ALPHA_BACKGROUND, (200, 100, 50)]


def test_cmyk_becomes_rgb():
    cmyk = Image.new("CMYK", (2, 1))
    cmyk.putpixel((0, 0), (255, 0, 0, 0))  # pure cyan ink
    rgb = load_rgb(_jpeg_bytes(cmyk, quality=100))
    red, green, blue = rgb.getpixel((0, 0))
    assert rgb.mode == "RGB" and red < 10 and green > 245 and blue > 245
    assert min(rgb.getpixel((1, 0))) > 245  # no ink: white


def test_exif_orientation_is_applied():
    stored = Image.new("RGB", (4, 2), (0, 0, 0))
    stored.putpixel((0, 0), (255, 0, 0))
    exif = Image.Exif()
    exif[0x0112] = 6  # rotate 90 degrees clockwise to display
    buffer = io.BytesIO()
    stored.save(buffer, "PNG", exif=exif.tobytes())
    upright = load_rgb(buffer.getvalue())
    assert upright.size == (2, 4)
    # The stored top-left corner is the displayed top-right one.
    assert upright.getpixel((1, 0))[0] > 200 and upright.getpixel((0, 0))[0] < 50


@pytest.mark.parametrize("rel", sorted(BAD))
def test_each_bad_file_has_its_reason(tmp_path, rel):
    write, reason = BAD[rel]
    path = tmp_path / Path(rel).name
    write(path)
    with pytest.raises(BadImage) as caught:
        load_rgb(path, MAX_PIXELS)
    assert caught.value.reason == reason


@pytest.mark.parametrize("name", ["gone.jpg", "folder.jpg"])
def test_missing_file_or_directory_is_unreadable(tmp_path, name):
    (tmp_path / "folder.jpg" / "inside").mkdir(parents=True)
    with pytest.raises(BadImage) as caught:
        load_rgb(tmp_path / name)
    assert caught.value.reason == "unreadable"


def test_corrupt_data_in_a_recognised_format_is_a_decode_error():
    data = bytearray(_png(_noise(0)))
    data[100:140] = bytes(b ^ 0x55 for b in data[100:140])  # inside the pixel data
    with pytest.raises(BadImage) as caught:
        load_rgb(bytes(data))
    assert caught.value.reason == "decode_error"


def test_pixel_limit_is_per_call_and_restored():
    pixels = _png(Image.new("RGB", (80, 80)))
    before = Image.MAX_IMAGE_PIXELS
    assert load_rgb(pixels).size == (80, 80)  # the default limit is far above 6400
    with pytest.raises(BadImage, match="6400 pixels > max_image_pixels 4096"):
        load_rgb(pixels, 4096)
    assert before == Image.MAX_IMAGE_PIXELS


# --- the dataset options ---------------------------------------------------------------------


def test_every_source_accepts_the_image_options(tmp_path):
    synthetic = build_dataset("s", {"source": "synthetic", "strict": True, "max_image_pixels": 9})
    assert synthetic.image_policy.strict and synthetic.image_policy.max_image_pixels == 9
    folder = build_dataset("f", _spec(_corpus(tmp_path, with_bad=False)))
    assert not folder.image_policy.strict and folder.image_policy.max_image_pixels == MAX_PIXELS


@pytest.mark.parametrize(
    ("key", "value", "message"),
    [
        ("strict", "yes", "strict must be true or false"),
        ("max_image_pixels", 0, "max_image_pixels must be a positive integer"),
        ("max_image_pixels", 1.5, "max_image_pixels must be a positive integer"),
    ],
)
def test_bad_option_values_name_the_dataset(key, value, message):
    with pytest.raises(ValueError, match=f"dataset 'd': {message}"):
        build_dataset("d", {"source": "synthetic", key: value})


def test_listing_leaves_out_non_image_names_but_keeps_bad_images(tmp_path):
    ids = {r.id for r in build_dataset("f", _spec(_corpus(tmp_path, with_bad=True))).records()}
    assert ids == set(GOOD) | set(BAD)


def test_iter_image_batches_drops_and_reports_bad_rows(tmp_path, caplog):
    ds = build_dataset("f", _spec(_corpus(tmp_path, with_bad=True)))
    records = ds.records()
    seen: list[int] = []
    with caplog.at_level(logging.WARNING, logger="clipsae.activations.extract"):
        for images, positions in iter_image_batches(
            ds, records, _to_tensor, torch.device("cpu"), batch_size=3
        ):
            assert images.shape == (len(positions), 3, 8, 8)
            seen += positions.tolist()
    assert [records[p].id for p in seen] == [r.id for r in records if r.id in GOOD]
    warned = [m for m in caplog.messages if m.startswith("skipped ")]
    assert len(warned) == len(BAD)
    for rel, (_, reason) in BAD.items():
        assert any(m.startswith(f"skipped {tmp_path / rel}: {reason}: ") for m in warned)


def _to_tensor(image: Image.Image) -> torch.Tensor:
    return torch.from_numpy(np.array(image.resize((8, 8)))).permute(2, 0, 1).float()


# --- extraction ------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def clip():
    torch.manual_seed(0)
    return load_clip("clipsae-tiny-vit", "none", device="cpu")


def _extract(clip, spec: dict, out: Path, batch_size: int = 4, num_workers: int = 0):
    ds = build_dataset("corpus", spec)
    return extract_activations(
        clip, ds, ds.records(), "final", out, batch_size, num_workers, shard_rows=3
    )


def test_extraction_skips_bad_files_and_matches_a_clean_folder(tmp_path, clip):
    messy = _corpus(tmp_path / "messy", with_bad=True)
    clean = _corpus(tmp_path / "clean", with_bad=False)
    # One image per batch: a batch's make-up changes float rounding in the model by ~1e-7, and
    # dropping bad rows changes which images share a batch.
    _extract(clip, _spec(messy), tmp_path / "out_messy", batch_size=1, num_workers=2)
    _extract(clip, _spec(clean), tmp_path / "out_clean", batch_size=1)

    skipped = pl.read_parquet(tmp_path / "out_messy" / "skipped.parquet")
    assert skipped.columns == ["id", "source", "reason", "detail"]
    assert dict(zip(skipped["id"], skipped["reason"], strict=True)) == {
        rel: reason for rel, (_, reason) in BAD.items()
    }
    assert skipped["source"].to_list() == [str(messy / rel) for rel in skipped["id"]]
    assert pl.read_parquet(tmp_path / "out_clean" / "skipped.parquet").height == 0

    messy_index = pl.read_parquet(tmp_path / "out_messy" / "index.parquet")
    clean_index = pl.read_parquet(tmp_path / "out_clean" / "index.parquet")
    assert sorted(messy_index["id"]) == sorted(GOOD)
    assert messy_index.equals(clean_index)
    np.testing.assert_array_equal(
        load_activations(tmp_path / "out_messy"), load_activations(tmp_path / "out_clean")
    )
    meta = json.loads((tmp_path / "out_messy" / "meta.json").read_text())
    expected_counts = {"not_an_image": 2, "too_large": 2, "truncated": 1, "empty_file": 1}
    assert meta["extra"]["skipped"] == expected_counts


def test_strict_fails_naming_the_file(tmp_path, clip):
    messy = _corpus(tmp_path / "messy", with_bad=True)
    first_bad = min(BAD)  # records are listed in path order: a/garbage.jpg
    with pytest.raises(BadImage, match=re.escape(str(messy / first_bad))) as caught:
        _extract(clip, _spec(messy, strict=True), tmp_path / "out")
    assert caught.value.reason == BAD[first_bad][1]
    assert "strict: true" in str(caught.value)
    assert not (tmp_path / "out").exists()


def test_all_bad_is_an_error_not_an_empty_result(tmp_path, clip):
    root = tmp_path / "bad"
    for rel in ("a/x.jpg", "b/y.png"):
        (root / rel).parent.mkdir(parents=True)
        (root / rel).write_bytes(b"")
    with pytest.raises(ValueError, match=r"all 2 images .* are bad \(\{'empty_file': 2\}\)"):
        _extract(clip, _spec(root), tmp_path / "out")
