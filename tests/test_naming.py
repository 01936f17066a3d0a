"""Vocabulary loading and naming latents by their nearest concept, on planted and real CLIP data."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import polars as pl
import pytest

from clipsae.interpret.naming import (
    NAME_COLUMNS,
    VocabError,
    load_bilingual_vocab,
    name_latents,
    write_names_csv,
)

SHIPPED_VOCAB = Path(__file__).parents[1] / "config" / "vocab" / "concepts_en_ru.tsv"
CIFAR10 = ["airplane", "automobile", "bird", "cat", "deer", "dog", "frog", "horse", "ship", "truck"]
COCO_EMBEDDINGS = "/work/shared/data/clip/detic_clip_vitb32_text_coco80.npy"
COCO_EN = [
    "person",
    "bicycle",
    "car",
    "motorcycle",
    "airplane",
    "bus",
    "train",
    "truck",
    "boat",
    "traffic light",
    "fire hydrant",
    "stop sign",
    "parking meter",
    "bench",
    "bird",
    "cat",
    "dog",
    "horse",
    "sheep",
    "cow",
    "elephant",
    "bear",
    "zebra",
    "giraffe",
    "backpack",
    "umbrella",
    "handbag",
    "tie",
    "suitcase",
    "frisbee",
    "skis",
    "snowboard",
    "sports ball",
    "kite",
    "baseball bat",
    "baseball glove",
    "skateboard",
    "surfboard",
    "tennis racket",
    "bottle",
    "wine glass",
    "cup",
    "fork",
    "knife",
    "spoon",
    "bowl",
    "banana",
    "apple",
    "sandwich",
    "orange",
    "broccoli",
    "carrot",
    "hot dog",
    "pizza",
    "donut",
    "cake",
    "chair",
    "couch",
    "potted plant",
    "bed",
    "dining table",
    "toilet",
    "tv",
    "laptop",
    "mouse",
    "remote",
    "keyboard",
    "cell phone",
    "microwave",
    "oven",
    "toaster",
    "sink",
    "refrigerator",
    "book",
    "clock",
    "vase",
    "scissors",
    "teddy bear",
    "hair drier",
    "toothbrush",
]


def _write(path, text: str):
    path.write_text(text, encoding="utf-8")
    return path


def test_load_bilingual_vocab_reads_both_columns(tmp_path) -> None:
    vocab = load_bilingual_vocab(_write(tmp_path / "v.tsv", "en\tru\nred\tкрасный\ncircle\tкруг\n"))
    assert vocab.columns == ["en", "ru"]
    assert vocab.rows() == [("red", "красный"), ("circle", "круг")]


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("english\trussian\nred\tкрасный\n", r"line 1: expected the header"),
        ("red\tкрасный\n", r"line 1: expected the header"),
        ("en\tru\nred\tкрасный\ncircle\t\n", r"line 3: empty cell"),
        ("en\tru\nred\tкрасный\n\tкруг\n", r"line 3: empty cell"),
        ("en\tru\nred\tкрасный\nblue синий\n", r"line 3: expected 2 tab-separated cells, got 1"),
        ("en\tru\nred\tкрасный\n\n", r"line 3: expected 2 tab-separated cells"),
        ("en\tru\nred\tкрасный\nblue\tсиний\nred\tалый\n", r"line 4: 'red' repeats line 2"),
        ("en\tru\n", r"no concepts"),
    ],
)
def test_load_bilingual_vocab_errors_name_file_and_line(tmp_path, text: str, message: str) -> None:
    path = _write(tmp_path / "bad.tsv", text)
    with pytest.raises(VocabError, match=message) as err:
        load_bilingual_vocab(path)
    assert str(path) in str(err.value)


def test_load_bilingual_vocab_rejects_non_utf8(tmp_path) -> None:
    path = tmp_path / "cp1251.tsv"
    path.write_bytes("en\tru\nred\tкрасный\n".encode("cp1251"))
    with pytest.raises(VocabError, match="not valid UTF-8"):
        load_bilingual_vocab(path)


def _toy_vocab(n: int) -> pl.DataFrame:
    return pl.DataFrame(
        {"en": [f"concept{i}" for i in range(n)], "ru": [f"понятие{i}" for i in range(n)]}
    )


def test_planted_directions_get_their_concepts_and_exact_scores() -> None:
    rng = np.random.default_rng(0)
    text = rng.standard_normal((50, 32)).astype(np.float32)
    planted = [7, 0, 49, 7]
    directions = 3.0 * text[planted]  # scale must not matter: cosines use unit vectors
    names = name_latents(directions, text, _toy_vocab(50), top_n=4, center=False)
    assert names.columns == list(NAME_COLUMNS)
    assert names["latent"].to_list() == [0, 1, 2, 3]
    assert names["label_en"].to_list() == [f"concept{i}" for i in planted]
    assert names["label_ru"].to_list() == [f"понятие{i}" for i in planted]
    np.testing.assert_allclose(names["score"].to_numpy(), 1.0, atol=1e-5)
    unit = text / np.linalg.norm(text, axis=1, keepdims=True)
    cosines = unit[planted] @ unit.T
    second = np.sort(cosines, axis=1)[:, -2]
    np.testing.assert_allclose(names["margin"].to_numpy(), 1.0 - second, atol=1e-5)
    expected_top = [np.argsort(-row)[:4] for row in cosines]
    assert names["top_en"].to_list() == ["; ".join(f"concept{i}" for i in t) for t in expected_top]
    assert names["top_ru"].to_list() == ["; ".join(f"понятие{i}" for i in t) for t in expected_top]


def _assert_same_names(got: pl.DataFrame, expected: pl.DataFrame) -> None:
    """Labels exactly; cosines to float32 rounding, which depends on the matmul's chunk shape."""
    numeric = ["score", "margin"]
    assert got.drop(numeric).equals(expected.drop(numeric))
    for column in numeric:
        np.testing.assert_allclose(got[column].to_numpy(), expected[column].to_numpy(), atol=1e-6)


def test_chunking_and_latent_subset_do_not_change_names() -> None:
    rng = np.random.default_rng(1)
    text = rng.standard_normal((30, 16))
    directions = rng.standard_normal((23, 16))
    whole = name_latents(directions, text, _toy_vocab(30), chunk_size=1000)
    chunked = name_latents(directions, text, _toy_vocab(30), chunk_size=4)
    _assert_same_names(whole, chunked)
    subset = name_latents(directions, text, _toy_vocab(30), latents=[22, 3], chunk_size=1)
    _assert_same_names(subset, whole[[22, 3]])


def test_name_latents_rejects_mismatched_inputs() -> None:
    text = np.ones((5, 8))
    with pytest.raises(ValueError, match="not the same CLIP space"):
        name_latents(np.ones((3, 9)), text, _toy_vocab(5))
    with pytest.raises(ValueError, match="4 vocabulary rows but 5 text embeddings"):
        name_latents(np.ones((3, 8)), text, _toy_vocab(4))
    with pytest.raises(ValueError, match="top_n"):
        name_latents(np.ones((3, 8)), text, _toy_vocab(5), top_n=6)


@pytest.fixture(scope="module")
def coco() -> tuple[np.ndarray, pl.DataFrame]:
    embeddings = np.load(COCO_EMBEDDINGS)
    assert embeddings.shape == (80, 512) == (len(COCO_EN), 512)
    ru = [f"класс {i}" for i in range(80)]
    return embeddings, pl.DataFrame({"en": COCO_EN, "ru": ru})


def _unit(matrix: np.ndarray) -> np.ndarray:
    return matrix / np.linalg.norm(matrix, axis=1, keepdims=True)


def test_real_clip_text_noisy_copies_are_named_right(coco) -> None:
    embeddings, vocab = coco
    noise = np.random.default_rng(2).standard_normal(embeddings.shape) / np.sqrt(512)
    names = name_latents(_unit(embeddings) + noise, embeddings, vocab, center=False)
    assert names["label_en"].to_list() == vocab["en"].to_list()
    assert names.filter(pl.col("label_en") == "traffic light")["latent"].item() == 9


def test_centring_separates_concepts_on_real_clip_statistics(coco) -> None:
    """Concept-specific directions (no shared text component), as an SAE learns on images."""
    embeddings, vocab = coco
    raw_cos = _unit(embeddings) @ _unit(embeddings).T
    assert raw_cos[~np.eye(80, dtype=bool)].mean() > 0.6  # the shared component dominates
    specific = _unit(embeddings - embeddings.mean(axis=0))
    noise = 2.0 * np.random.default_rng(3).standard_normal(embeddings.shape) / np.sqrt(512)
    centred = name_latents(specific + noise, embeddings, vocab, center=True)
    raw = name_latents(specific + noise, embeddings, vocab, center=False)
    assert centred["label_en"].to_list() == vocab["en"].to_list()
    assert centred["margin"].mean() > 1.5 * raw["margin"].mean()
    assert (centred["margin"] > 0).all()


def test_write_names_csv_is_utf8_with_both_languages(tmp_path) -> None:
    vocab = pl.DataFrame({"en": ["red", "circle", "dog"], "ru": ["красный", "круг", "собака"]})
    text = np.eye(3, 4)
    names = name_latents(np.eye(3, 4)[[2, 0]], text, vocab, top_n=2, center=False)
    path = write_names_csv(names, tmp_path / "interpret" / "vocab.csv")
    assert [p.name for p in path.parent.iterdir()] == ["vocab.csv"]
    text_out = path.read_text(encoding="utf-8")
    assert text_out.splitlines()[0] == ",".join(NAME_COLUMNS)
    back = pl.read_csv(path)
    assert back["label_en"].to_list() == ["dog", "red"]
    assert back["label_ru"].to_list() == ["собака", "красный"]
    assert all(any("а" <= ch <= "я" for ch in label) for label in back["label_ru"])


def test_shipped_vocab_is_valid_bilingual_and_covers_class_lists() -> None:
    vocab = load_bilingual_vocab(SHIPPED_VOCAB)
    assert 600 <= len(vocab) <= 1000
    assert vocab["ru"].str.contains(r"^[а-яё ,«»\-]+$").all(), "Russian cells: Cyrillic, lower case"
    assert (vocab["en"] == vocab["en"].str.to_lowercase()).all()
    assert set(CIFAR10 + COCO_EN + ["background", "shape", "object"]) <= set(vocab["en"])
    pairs = dict(vocab.iter_rows())
    assert (pairs["red"], pairs["circle"], pairs["dog"]) == ("красный", "круг", "собака")


def test_real_clip_names_come_out_in_russian(coco) -> None:
    embeddings, _ = coco
    russian = dict(load_bilingual_vocab(SHIPPED_VOCAB).iter_rows())
    vocab = pl.DataFrame({"en": COCO_EN, "ru": [russian[en] for en in COCO_EN]})
    noise = np.random.default_rng(4).standard_normal(embeddings.shape) / np.sqrt(512)
    names = name_latents(_unit(embeddings) + noise, embeddings, vocab, center=False)
    assert names["label_ru"].to_list() == vocab["ru"].to_list()
    assert names.filter(pl.col("label_en") == "dog")["label_ru"].item() == "собака"
