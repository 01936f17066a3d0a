"""Cleaning of vocabulary, VLM and manual names into interpretations.csv, with real CSV files."""

from __future__ import annotations

import numpy as np
import polars as pl
import pytest
import torch
from configs import detection_sampling

from clipsae.interpret.cleaning import (
    INTERPRETATION_COLUMNS,
    InterpretationsError,
    check_interpretations,
    clean_interpretations,
    has_cyrillic,
    is_no_pattern,
    normalize_label,
    read_csv_table,
    read_optional_csv,
    score_interpretations,
    write_interpretations,
)
from clipsae.interpret.naming import write_names_csv
from clipsae.interpret.scoring import score_names
from clipsae.interpret.vlm.answer import answer_fields, parse_answer
from clipsae.interpret.vlm.naming import LatentName, VLMResult
from clipsae.interpret.vlm.naming import write_names_csv as write_vlm_csv
from clipsae.models.clip import load_clip
from clipsae.models.text import encode_texts

VOCAB = [
    ("red", "красный"),
    ("blue", "синий"),
    ("green", "зелёный"),
    ("yellow", "жёлтый"),
    ("white", "белый"),
    ("black", "чёрный"),
    ("circle", "круг"),
    ("square", "квадрат"),
    ("triangle", "треугольник"),
    ("star", "звезда"),
    ("cross", "крест"),
]

# latent -> (label_en, label_ru, status): the answer shapes a real VLM sends back, as the VLM
# client writes them once it has parsed the JSON out of fences and prose.
VLM_ANSWERS = {
    0: ('"Red Circle."', "«Красный  круг»", "ok"),  # quoted, capitalised: cleaned, accepted
    1: ("синий квадрат", "blue square", "ok"),  # languages swapped
    2: ("No clear pattern", "Нет чёткого паттерна", "ok"),  # a shrug in both languages
    3: ("green triangle", "green triangle", "ok"),  # left untranslated
    4: ("", "", "budget"),  # never asked
    5: ("жёлтый", "жёлтый", "ok"),  # Russian in both columns
    6: ("white star", "", "ok"),  # Russian label missing
    7: ("Various objects", "разные объекты", "ok"),  # another shrug
    8: ("**White star**", "Белая звезда", "ok"),  # markdown bold
    9: ("white   star!", "белая звезда.", "ok"),  # the same name, spelt differently
}


def vocab_names(n: int = 12) -> pl.DataFrame:
    """A vocab.csv table as ``naming.name_latents`` writes it (latent i named VOCAB[i % 11])."""
    rows = [VOCAB[i % len(VOCAB)] for i in range(n)]
    others = [VOCAB[(i + 1) % len(VOCAB)] for i in range(n)]
    return pl.DataFrame(
        {
            "latent": list(range(n)),
            "label_en": [en for en, _ in rows],
            "label_ru": [ru for _, ru in rows],
            "score": np.linspace(0.5, 0.2, n),
            "top_en": [f"{a}; {b}" for (a, _), (b, _) in zip(rows, others, strict=True)],
            "top_ru": [f"{a}; {b}" for (_, a), (_, b) in zip(rows, others, strict=True)],
            "margin": np.full(n, 0.05),
        }
    )


def vlm_csv(tmp_path, answers=VLM_ANSWERS):
    path = tmp_path / "vlm.csv"
    pl.DataFrame(
        {
            "latent": list(answers),
            "label_en": [a[0] for a in answers.values()],
            "label_ru": [a[1] for a in answers.values()],
            "description_en": [
                "Shapes of one kind." if a[2] == "ok" else "" for a in answers.values()
            ],
            "description_ru": [
                "Фигуры одного вида." if a[2] == "ok" else "" for a in answers.values()
            ],
            "status": [a[2] for a in answers.values()],
        }
    ).write_csv(path)
    return path


@pytest.fixture
def files(tmp_path):
    vocab_path = write_names_csv(vocab_names(), tmp_path / "vocab.csv")
    return read_csv_table(vocab_path), read_csv_table(vlm_csv(tmp_path))


def row(table: pl.DataFrame, latent: int) -> dict:
    return table.filter(pl.col("latent") == latent).row(0, named=True)


def test_flag_counts_for_fenced_swapped_and_no_pattern_answers(files) -> None:
    vocab, vlm = files
    result = clean_interpretations(vocab_names=vocab, vlm_names=vlm)
    assert result.summary["by_flag"] == {
        "vlm_empty": 1,
        "vlm_en_not_english": 1,
        "vlm_no_pattern": 2,
        "vlm_ru_untranslated": 1,
        "vlm_swapped": 1,
    }
    # 0, 8, 9 accepted; 1, 2, 3, 5, 6, 7 flagged and 4 unasked fall back; 10, 11 have no answer
    assert result.summary["by_source"] == {"manual": 0, "vlm": 3, "vocab": 9}
    assert result.summary["vlm_status"] == {"budget": 1, "ok": 9}
    table = result.table
    assert table.filter(pl.col("source") == "vlm")["latent"].to_list() == [0, 8, 9]
    assert row(table, 0)["label_en"] == "red circle"
    assert row(table, 0)["label_ru"] == "красный круг"
    assert row(table, 0)["flags"] == ""
    assert row(table, 0)["description_ru"] == "Фигуры одного вида."
    assert row(table, 1)["flags"] == "vlm_swapped"
    assert row(table, 2)["flags"] == "vlm_no_pattern"
    assert row(table, 4)["flags"] == ""


def test_flagged_vlm_answers_fall_back_to_the_vocabulary_name(files) -> None:
    vocab, vlm = files
    table = clean_interpretations(vocab_names=vocab, vlm_names=vlm).table
    for latent in (1, 2, 3, 4, 5, 6, 7):
        got = row(table, latent)
        en, ru = VOCAB[latent]
        assert (got["label_en"], got["label_ru"], got["source"]) == (en, ru, "vocab")
        assert got["description_en"] == f"{en}; {VOCAB[latent + 1][0]}"


def test_spellings_of_one_name_merge_and_shared_names_are_counted(files) -> None:
    vocab, vlm = files
    summary = clean_interpretations(vocab_names=vocab, vlm_names=vlm).summary
    shared = {s["label_en"]: (s["n_latents"], s["label_ru"]) for s in summary["shared_names"]}
    # 8 and 9 are one name after normalisation; vocab latents 0 and 11 are both "red", but 0
    # took the VLM's "red circle", so "red" is no longer shared
    assert shared == {"white star": (2, ["белая звезда"])}
    assert summary["n_names"] == 11


def test_interpretations_csv_schema(tmp_path, files) -> None:
    vocab, vlm = files
    path = write_interpretations(
        clean_interpretations(vocab_names=vocab, vlm_names=vlm).table, tmp_path / "i.csv"
    )
    back = read_csv_table(path)
    assert tuple(back.columns) == INTERPRETATION_COLUMNS
    assert len(back) == 12
    assert back["latent"].to_list() == [str(i) for i in range(12)]
    for record in back.iter_rows(named=True):
        assert record["label_en"] and record["label_ru"]
        assert has_cyrillic(record["label_ru"]), record
        assert not has_cyrillic(record["label_en"]), record
        assert record["source"] in {"manual", "vlm", "vocab"}
    assert back["score"].null_count() == 12  # not scored yet


def test_manual_names_win_over_vlm_and_vocabulary(tmp_path, files) -> None:
    vocab, vlm = files
    manual_path = tmp_path / "manual.csv"
    manual_path.write_text(
        "latent,label_en,label_ru,description_en\n"
        "3,Green Triangle,Зелёный треугольник,Named by hand.\n"
        "0,red disc,красный диск,\n"
        "10,cross,крест,\n",
        encoding="utf-8",
    )
    result = clean_interpretations(
        vocab_names=vocab, vlm_names=vlm, manual=read_optional_csv(manual_path)
    )
    table = result.table
    assert row(table, 3) == {
        "latent": 3,
        "label_en": "green triangle",
        "label_ru": "зелёный треугольник",
        "description_en": "Named by hand.",
        "description_ru": "",
        "source": "manual",
        "score": None,
        "flags": "",
    }
    assert (row(table, 0)["label_en"], row(table, 0)["source"]) == ("red disc", "manual")
    assert row(table, 10)["source"] == "manual"
    assert result.summary["by_source"] == {"manual": 3, "vlm": 2, "vocab": 7}
    # the untranslated VLM answer of latent 3 no longer counts: the manual name replaced it
    assert "vlm_ru_untranslated" not in result.summary["by_flag"]


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("latent,label_en,label_ru\n3,green,\n", "latent 3 has an empty label_ru"),
        ("latent,label_en,label_ru\n99,green,зелёный\n", r"latents \[99\] are not in"),
        ("latent,label_en,label_ru\nx,green,зелёный\n", "line 2: latent 'x' is not an integer"),
        ("latent,label_en,label_ru\n3,a,б\n3,c,д\n", "line 3: latent 3 appears twice"),
        ("latent,label_en\n3,green\n", r"manual names: missing columns \['label_ru'\]"),
    ],
)
def test_bad_manual_tables_are_refused_naming_the_row(tmp_path, text, message) -> None:
    path = tmp_path / "manual.csv"
    path.write_text(text, encoding="utf-8")
    with pytest.raises(InterpretationsError, match=message):
        clean_interpretations(vocab_names=vocab_names(), manual=read_csv_table(path))


def test_without_a_vlm_csv_every_name_comes_from_the_vocabulary(tmp_path) -> None:
    assert read_optional_csv(tmp_path / "absent.csv") is None
    assert read_optional_csv(None) is None
    result = clean_interpretations(vocab_names=vocab_names(), vlm_names=None)
    assert result.summary["by_source"] == {"manual": 0, "vlm": 0, "vocab": 12}
    assert result.summary["vlm_status"] == {}
    assert result.summary["by_flag"] == {}
    assert result.agreement.is_empty()
    check_interpretations(result.table)


def test_english_only_vocabulary_takes_russian_from_the_bilingual_list() -> None:
    english_only = vocab_names(4).with_columns(label_ru=pl.lit(""), top_ru=pl.lit(""))
    bilingual = pl.DataFrame({"en": ["Red", "green"], "ru": ["красный", "зелёный"]})
    table = clean_interpretations(vocab_names=english_only, bilingual=bilingual).table
    assert table["label_ru"].to_list() == ["красный", "blue", "зелёный", "yellow"]
    assert table["flags"].to_list() == ["", "ru_missing", "", "ru_missing"]
    assert table["description_ru"].to_list() == [""] * 4
    check_interpretations(table)  # an English label_ru is allowed where it is flagged
    with pytest.raises(InterpretationsError, match="latent 1: label_ru 'blue' has no Cyrillic"):
        check_interpretations(table.with_columns(flags=pl.lit("")))


def test_check_refuses_empty_labels_and_wrong_columns(files) -> None:
    table = clean_interpretations(vocab_names=files[0]).table
    with pytest.raises(InterpretationsError, match="latent 0: empty label"):
        check_interpretations(table.with_columns(label_en=pl.lit("")))
    with pytest.raises(InterpretationsError, match="expected"):
        check_interpretations(table.drop("flags"))


@pytest.mark.parametrize(
    ("raw", "clean"),
    [
        ('"Red Circle."', "red circle"),
        ("  `blue`  ", "blue"),
        ("**Dog on grass**", "dog on grass"),
        ("«Собака на траве»!", "собака на траве"),
        ("t-shirt", "t-shirt"),
        ("red ; blue", "red; blue"),
        ("Ｆｕｌｌ width", "full width"),
        (None, ""),
        ("...", ""),
    ],
)
def test_normalize_label(raw, clean) -> None:
    assert normalize_label(raw) == clean


@pytest.mark.parametrize(
    "label",
    [
        "no clear pattern",
        "no obvious common theme",
        "there is no consistent concept",
        "unclear",
        "mixed",
        "random images",
        "various objects",
        "cannot determine",
        "n/a",
        "нет чёткого паттерна",
        "нет общей темы",
        "без явной закономерности",
        "разные объекты",
        "неясно",
        "невозможно определить",
    ],
)
def test_no_pattern_phrasings_are_recognised(label) -> None:
    assert is_no_pattern(label)


@pytest.mark.parametrize(
    "label",
    ["red circle", "mixed berries", "no entry sign", "random walk", "красный круг", "нет входа"],
)
def test_real_names_are_not_taken_for_no_pattern(label) -> None:
    assert not is_no_pattern(label)


def test_agreement_uses_clip_text_embeddings_of_both_names(files) -> None:
    vocab, vlm = files
    torch.manual_seed(0)
    clip = load_clip("clipsae-tiny-vit", "none", device="cpu")
    result = clean_interpretations(
        vocab_names=vocab, vlm_names=vlm, embed=lambda texts: encode_texts(clip, texts)
    )
    agreement = result.agreement
    assert agreement["latent"].to_list() == [0, 8, 9]
    assert agreement["vocab_en"].to_list() == ["red", "triangle", "star"]
    assert agreement["vlm_en"].to_list() == ["red circle", "white star", "white star"]
    emb = encode_texts(clip, ["red", "red circle", "triangle", "white star", "star"])
    expected = [emb[0] @ emb[1], emb[2] @ emb[3], emb[4] @ emb[3]]
    np.testing.assert_allclose(agreement["cosine"].to_numpy(), expected, atol=1e-5)
    assert result.summary["agreement"]["n"] == 3
    assert result.summary["agreement"]["median"] == pytest.approx(np.median(expected), abs=1e-5)


def test_scores_are_the_detection_aurocs_of_the_chosen_labels(files) -> None:
    """Images of 12 orthogonal "label" directions; latent i fires on the images of its label."""
    vocab, vlm = files
    result = clean_interpretations(vocab_names=vocab, vlm_names=vlm)
    labels = result.table["label_en"].to_list()
    distinct = sorted(set(labels))
    rng = np.random.default_rng(0)
    basis = np.linalg.qr(rng.standard_normal((32, 32)))[0][: len(distinct)]
    direction = dict(zip(distinct, basis, strict=True))
    concept_of = np.repeat(np.arange(len(labels)), 40)
    images = basis[[distinct.index(labels[c]) for c in concept_of]]
    images = images + 0.1 * rng.standard_normal(images.shape)
    acts = np.stack([(concept_of == i) * 1.0 for i in range(len(labels))], axis=1)
    asked: list[list[str]] = []

    def embed(texts):
        asked.append(list(texts))
        return np.stack([direction[t] for t in texts])

    sampling = detection_sampling(per_quantile=4, n_negative=80, seed=1)
    scored = score_interpretations(
        result, embed=embed, activations=acts, image_embeddings=images, sampling=sampling
    )
    assert asked == [distinct]  # each distinct label embedded once
    expected = score_names(
        latents=list(range(12)),
        name_embeddings=np.stack([direction[label] for label in labels]),
        activations=acts,
        image_embeddings=images,
        sampling=sampling,
    )
    assert scored.table["score"].to_list() == expected.per_latent["auroc"].to_list()
    assert scored.summary["detection"]["n_scored"] == 12
    # latents 8 and 9 share "white star", so the images of either rank the other's high too
    assert scored.summary["detection"]["median_auroc"] >= 0.95
    assert scored.summary["detection"]["median_shuffled"] < 0.6
    assert scored.detection is not None
    check_interpretations(scored.table)


def test_answers_through_the_vlm_parser_and_csv_writer_are_cleaned(tmp_path) -> None:
    """Raw chat answers (fenced JSON, prose around it, swapped, a shrug) as the VLM step saves."""
    fields = answer_fields(["en", "ru"])
    raw = {
        0: '```json\n{"label_en": "Red Circle", "label_ru": "Красный круг", '
        '"description_en": "Red circles.", "description_ru": "Красные круги."}\n```',
        1: 'Here it is: {"label_en": "синий квадрат", "label_ru": "blue square", '
        '"description_en": "-", "description_ru": "-"} Hope this helps.',
        2: '{"label_en": "No clear pattern", "label_ru": "Нет явной закономерности", '
        '"description_en": "-", "description_ru": "-"}',
    }
    names = [LatentName(latent, "ok", parse_answer(text, fields)) for latent, text in raw.items()]
    names.append(LatentName(3, "skipped"))
    write_vlm_csv(
        VLMResult(names, requests=3, cached=0), tmp_path / "vlm.csv", languages=["en", "ru"]
    )
    result = clean_interpretations(
        vocab_names=vocab_names(), vlm_names=read_csv_table(tmp_path / "vlm.csv")
    )
    assert result.summary["by_flag"] == {"vlm_no_pattern": 1, "vlm_swapped": 1}
    assert result.summary["vlm_status"] == {"ok": 3, "skipped": 1}
    assert row(result.table, 0)["label_en"] == "red circle"
    assert row(result.table, 0)["source"] == "vlm"
