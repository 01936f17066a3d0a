"""One trusted name per latent, EN + RU, from vocabulary names, VLM answers and names given by hand.

Raw VLM answers come back in every shape: quoted, capitalised, with a trailing full stop, in the
wrong language, or as a shrug ("no clear pattern"). This module turns them into one table a
report can show and a scorer can check:

- labels are normalised (Unicode NFKC, lower case, single spaces, no punctuation or quotes around
  them), so spellings that differ only in those merge into one name;
- a VLM answer is flagged when a label is empty, says there is no pattern (English and Russian
  phrasings), has the languages swapped, is left untranslated (no Cyrillic in ``label_ru``) or
  has Cyrillic in ``label_en``; a flagged answer falls back to the vocabulary name, and its flags
  stay on the row with a ``vlm_`` prefix so the report can say why;
- names given by hand (an optional manual CSV) win over both, with ``source=manual``;
- an English-only vocabulary gets its Russian name from a bilingual list where the word is there;
  where it is not, ``label_ru`` repeats the English label and the row is flagged ``ru_missing``.

The ``score`` column is the detection AUROC of the chosen label (``clipsae.interpret.scoring``),
filled by ``score_interpretations`` once the labels are chosen; the vocabulary's own cosine is
not carried over, so ``score`` means one thing in every row.
"""

from __future__ import annotations

import re
import unicodedata
from collections import Counter
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import numpy as np
import polars as pl

from clipsae.interpret.scoring import DetectionSampling, DetectionScores, score_names
from clipsae.runtime.atomic import atomic_output

INTERPRETATION_COLUMNS = (
    "latent",
    "label_en",
    "label_ru",
    "description_en",
    "description_ru",
    "source",
    "score",
    "flags",
)
VOCAB_NAME_COLUMNS = ("latent", "label_en", "label_ru", "top_en", "top_ru")
VLM_COLUMNS = ("latent", "label_en", "label_ru", "description_en", "description_ru", "status")
MANUAL_COLUMNS = ("latent", "label_en", "label_ru")
SOURCES = ("manual", "vlm", "vocab")
VLM_OK = "ok"
FLAG_SEPARATOR = ";"
# Flags of one bilingual answer, in the order they are written.
EMPTY, NO_PATTERN, SWAPPED, RU_UNTRANSLATED, EN_NOT_ENGLISH = (
    "empty",
    "no_pattern",
    "swapped",
    "ru_untranslated",
    "en_not_english",
)
RU_MISSING = "ru_missing"

TextEmbedder = Callable[[Sequence[str]], np.ndarray]

_CYRILLIC = re.compile(r"[\u0400-\u04FF]")
_LATIN = re.compile(r"[A-Za-z\u00C0-\u024F]")
_SPACE_BEFORE_PUNCTUATION = re.compile(r"\s+([,;:!?.])")
_FILLER = r"(?:images?|pictures?|photos?|objects?|things?|items?|scenes?|content|concepts?|stuff)"
_NO_PATTERN_EN = (
    r".*\bno\s+(?:\w+\s+)?(?:pattern|theme|concept|feature|topic|commonality|connection|"
    r"common\s+\w+)s?\b.*",
    r".*\b(?:cannot|can't|can not|hard to|unable to)\s+(?:be\s+)?(?:determine|tell|say|identify)"
    r".*",
    r"(?:unclear|not clear|ambiguous|unknown|uninterpretable|indeterminate|undetermined|none|"
    r"nothing|n/?a|noise|polysemantic)(?:\s+(?:pattern|theme|concept|content|feature)s?)?",
    rf"(?:various|random|mixed|miscellaneous|misc|assorted|diverse|unrelated)(?:\s+{_FILLER})?",
)
_RU_FILLER = r"(?:изображения|картинки|фото|объекты|предметы|сцены|вещи|понятия)"
_NO_PATTERN_RU = (
    r".*\bнет\s+(?:\w+\s+)?(?:паттерна|шаблона|закономерности|признака|мотива|концепта|"
    r"понятия|смысла|темы|связи|общего)\b.*",
    r".*\bбез\s+(?:\w+\s+)?(?:закономерности|темы|паттерна|связи)\b.*",
    r".*\b(?:невозможно|нельзя|трудно|сложно)\s+(?:\w+\s+)?(?:определить|сказать|понять)\b.*",
    r"(?:неясно|не ясно|непонятно|неизвестно|неопределенно|нет|ничего|шум|общего нет)",
    rf"(?:разное|смешанное|случайное|разные|различные|случайные|смешанные|разнообразные|"
    rf"несвязанные)(?:\s+{_RU_FILLER})?",
)
_NO_PATTERN = [re.compile(p) for p in (*_NO_PATTERN_EN, *_NO_PATTERN_RU)]


class InterpretationsError(ValueError):
    """An input table that cannot be used; the message names the file or table and the row."""


@dataclass(frozen=True)
class Interpretations:
    """The cleaned table (``INTERPRETATION_COLUMNS``), the name agreement and the summary.

    ``agreement`` has one row per latent named by the VLM: ``latent, vocab_en, vlm_en, cosine``
    (empty without a text embedder). ``summary`` is plain JSON-ready data for the report.
    ``detection`` holds the per-latent AUROCs, shuffled baseline included, once scored.
    """

    table: pl.DataFrame
    agreement: pl.DataFrame
    summary: dict[str, Any] = field(default_factory=dict)
    detection: DetectionScores | None = None


def normalize_label(text: str | None) -> str:
    """A label in canonical form: NFKC, lower case, single spaces, no punctuation around it.

    Inner punctuation (hyphens, "; " between concepts) stays; only the characters a VLM wraps a
    label in (quotes, backticks, asterisks, brackets, full stops) are taken off its ends.
    """
    if text is None:
        return ""
    text = " ".join(unicodedata.normalize("NFKC", str(text)).split())
    text = _SPACE_BEFORE_PUNCTUATION.sub(r"\1", text)
    start, end = 0, len(text)
    while start < end and _is_wrapper(text[start]):
        start += 1
    while end > start and _is_wrapper(text[end - 1]):
        end -= 1
    return text[start:end].strip().lower()


def _is_wrapper(char: str) -> bool:
    return char.isspace() or char == "`" or unicodedata.category(char).startswith("P")


def has_cyrillic(text: str) -> bool:
    return bool(_CYRILLIC.search(text))


def has_latin(text: str) -> bool:
    return bool(_LATIN.search(text))


def is_no_pattern(label: str) -> bool:
    """Whether a normalised label says there is nothing to name (English or Russian phrasing)."""
    key = label.replace("ё", "е")
    return any(pattern.fullmatch(key) for pattern in _NO_PATTERN)


def answer_flags(label_en: str, label_ru: str) -> list[str]:
    """What is wrong with a normalised bilingual label pair; empty when it can be used."""
    if not label_en or not label_ru:
        return [EMPTY]
    flags = [NO_PATTERN] if is_no_pattern(label_en) or is_no_pattern(label_ru) else []
    cyrillic_en, cyrillic_ru = has_cyrillic(label_en), has_cyrillic(label_ru)
    if cyrillic_en and not cyrillic_ru and has_latin(label_ru):
        flags.append(SWAPPED)
    elif not cyrillic_ru:
        flags.append(RU_UNTRANSLATED)
    elif cyrillic_en:
        flags.append(EN_NOT_ENGLISH)
    return flags


def _by_latent(frame: pl.DataFrame, columns: Iterable[str], what: str) -> dict[int, dict]:
    """Rows keyed by latent, every cell a string ("" for null); refuses missing columns, bad ids."""
    missing = [c for c in columns if c not in frame.columns]
    if missing:
        raise InterpretationsError(f"{what}: missing columns {missing} (has {frame.columns})")
    rows: dict[int, dict] = {}
    for number, row in enumerate(frame.iter_rows(named=True), start=2):
        try:
            latent = int(row["latent"])
        except (TypeError, ValueError):
            raise InterpretationsError(
                f"{what}, line {number}: latent {row['latent']!r} is not an integer"
            ) from None
        if latent in rows:
            raise InterpretationsError(f"{what}, line {number}: latent {latent} appears twice")
        rows[latent] = {k: "" if v is None else str(v) for k, v in row.items()}
    return rows


def read_csv_table(path: Path) -> pl.DataFrame:
    """A CSV with every column read as text, so labels such as "1" or "null" stay strings."""
    return pl.read_csv(Path(path), infer_schema=False)


def read_optional_csv(path: Path | None) -> pl.DataFrame | None:
    """The table at ``path``, or None where there is none (VLM naming skipped, no manual names)."""
    return read_csv_table(path) if path is not None and Path(path).is_file() else None


@dataclass(frozen=True)
class _Name:
    label_en: str
    label_ru: str
    description_en: str
    description_ru: str
    source: str
    flags: tuple[str, ...] = ()


def _vocab_name(row: dict, russian_of: dict[str, str]) -> _Name:
    en, ru = normalize_label(row["label_en"]), normalize_label(row["label_ru"])
    flags: tuple[str, ...] = ()
    if not has_cyrillic(ru):
        ru = russian_of.get(en, "")
        if not ru:
            ru, flags = en, (RU_MISSING,)
    top_ru = row["top_ru"] if has_cyrillic(row["top_ru"]) else ""
    return _Name(en, ru, row["top_en"], top_ru, "vocab", flags)


def _answer_name(row: dict, source: str) -> _Name:
    return _Name(
        normalize_label(row["label_en"]),
        normalize_label(row["label_ru"]),
        " ".join(row.get("description_en", "").split()),
        " ".join(row.get("description_ru", "").split()),
        source,
    )


def _choose(vocab: _Name, vlm_row: dict | None, manual_row: dict | None) -> _Name:
    if manual_row is not None:
        name = _answer_name(manual_row, "manual")
        return replace(name, flags=tuple(answer_flags(name.label_en, name.label_ru)))
    if vlm_row is None or vlm_row["status"] != VLM_OK:
        return vocab
    answer = _answer_name(vlm_row, "vlm")
    rejected = answer_flags(answer.label_en, answer.label_ru)
    if not rejected:
        return answer
    return replace(vocab, flags=(*(f"vlm_{f}" for f in rejected), *vocab.flags))


def _check_manual(rows: dict[int, dict], what: str) -> None:
    for latent, row in rows.items():
        for column in MANUAL_COLUMNS[1:]:
            if not normalize_label(row[column]):
                raise InterpretationsError(f"{what}: latent {latent} has an empty {column}")


def clean_interpretations(
    *,
    vocab_names: pl.DataFrame,
    vlm_names: pl.DataFrame | None = None,
    manual: pl.DataFrame | None = None,
    bilingual: pl.DataFrame | None = None,
    embed: TextEmbedder | None = None,
) -> Interpretations:
    """Choose one cleaned EN + RU name per latent of ``vocab_names`` (the ``vocab.csv`` table).

    ``vlm_names`` is the VLM CSV (only ``status == "ok"`` rows are answers), ``manual`` a table
    with ``latent, label_en, label_ru`` and optionally the descriptions, ``bilingual`` an
    ``en, ru`` vocabulary for English-only names, and ``embed`` maps texts to L2-normalised CLIP
    text embeddings, for the agreement of the vocabulary and VLM names. Latents in the VLM or
    manual table that the vocabulary table lacks are refused: every row needs a fallback.
    """
    vocab = _by_latent(vocab_names, VOCAB_NAME_COLUMNS, "vocabulary names")
    vlm = {} if vlm_names is None else _by_latent(vlm_names, VLM_COLUMNS, "VLM names")
    hand = {} if manual is None else _by_latent(manual, MANUAL_COLUMNS, "manual names")
    _check_manual(hand, "manual names")
    for what, rows in (("VLM names", vlm), ("manual names", hand)):
        unknown = sorted(set(rows) - set(vocab))
        if unknown:
            raise InterpretationsError(
                f"{what}: latents {unknown[:10]} are not in the vocabulary names table"
            )
    russian_of = {} if bilingual is None else _russian_lookup(bilingual)
    latents = sorted(vocab)
    vocab_choice = {latent: _vocab_name(vocab[latent], russian_of) for latent in latents}
    chosen = {
        latent: _choose(vocab_choice[latent], vlm.get(latent), hand.get(latent))
        for latent in latents
    }
    table = _table(chosen)
    agreement = _agreement(vocab_choice, chosen, embed)
    summary = _summary(table, agreement, vlm)
    return Interpretations(table=table, agreement=agreement, summary=summary)


def _russian_lookup(bilingual: pl.DataFrame) -> dict[str, str]:
    lookup: dict[str, str] = {}
    for en, ru in bilingual.select("en", "ru").iter_rows():
        lookup.setdefault(normalize_label(en), normalize_label(ru))
    return lookup


def _table(chosen: dict[int, _Name]) -> pl.DataFrame:
    return pl.DataFrame(
        {
            "latent": list(chosen),
            "label_en": [n.label_en for n in chosen.values()],
            "label_ru": [n.label_ru for n in chosen.values()],
            "description_en": [n.description_en for n in chosen.values()],
            "description_ru": [n.description_ru for n in chosen.values()],
            "source": [n.source for n in chosen.values()],
            "score": pl.Series([None] * len(chosen), dtype=pl.Float64),
            "flags": [FLAG_SEPARATOR.join(n.flags) for n in chosen.values()],
        },
        schema_overrides={"latent": pl.Int64},
    )


def _agreement(
    vocab: dict[int, _Name], chosen: dict[int, _Name], embed: TextEmbedder | None
) -> pl.DataFrame:
    """Cosine of the text embeddings of each accepted VLM label and its latent's vocabulary name."""
    pairs = [
        (latent, vocab[latent].label_en, name.label_en)
        for latent, name in chosen.items()
        if name.source == "vlm"
    ]
    schema = {"latent": pl.Int64, "vocab_en": pl.Utf8, "vlm_en": pl.Utf8, "cosine": pl.Float64}
    if embed is None or not pairs:
        return pl.DataFrame(schema=schema)
    texts = sorted({text for _, *both in pairs for text in both})
    emb = np.asarray(embed(texts), dtype=np.float64)
    row_of = {text: i for i, text in enumerate(texts)}
    cosine = [float(emb[row_of[v]] @ emb[row_of[m]]) for _, v, m in pairs]
    latent, vocab_en, vlm_en = zip(*pairs, strict=True)
    return pl.DataFrame(
        {"latent": latent, "vocab_en": vocab_en, "vlm_en": vlm_en, "cosine": cosine},
        schema=schema,
    )


def _summary(table: pl.DataFrame, agreement: pl.DataFrame, vlm: dict[int, dict]) -> dict:
    flags = Counter(f for cell in table["flags"] for f in cell.split(FLAG_SEPARATOR) if f)
    shared = (
        table.group_by("label_en")
        .agg(pl.len().alias("n_latents"), pl.col("label_ru").unique().sort().alias("label_ru"))
        .filter(pl.col("n_latents") > 1)
        .sort(["n_latents", "label_en"], descending=[True, False])
    )
    return {
        "n_latents": len(table),
        "by_source": {s: int((table["source"] == s).sum()) for s in SOURCES},
        "by_flag": dict(sorted(flags.items())),
        "vlm_status": dict(sorted(Counter(row["status"] for row in vlm.values()).items())),
        "n_names": table["label_en"].n_unique(),
        "shared_names": shared.to_dicts(),
        "agreement": None
        if agreement.is_empty()
        else {
            "n": len(agreement),
            "median": float(agreement["cosine"].median()),
            "mean": float(agreement["cosine"].mean()),
        },
    }


def score_interpretations(
    interpretations: Interpretations,
    *,
    embed: TextEmbedder,
    activations: np.ndarray,
    image_embeddings: np.ndarray,
    sampling: DetectionSampling,
) -> Interpretations:
    """The same interpretations with ``score`` set to each chosen label's detection AUROC.

    ``activations`` (images, rows of the table) are the codes of the table's latents in table
    order (``latent_activations(encode, batches, latents=table["latent"])``), ``image_embeddings``
    the same images' CLIP embeddings. Each distinct label is embedded once. The summary gains
    the medians of the chosen and of the shuffled names (null when no latent could be scored).
    """
    table = interpretations.table
    labels = table["label_en"].to_list()
    distinct = sorted(set(labels))
    row_of = {label: i for i, label in enumerate(distinct)}
    emb = np.asarray(embed(distinct))[[row_of[label] for label in labels]]
    scores = score_names(
        latents=table["latent"].to_list(),
        name_embeddings=emb,
        activations=activations,
        image_embeddings=image_embeddings,
        sampling=sampling,
    )
    scored = table.with_columns(score=scores.per_latent["auroc"])
    summary = {
        **interpretations.summary,
        "detection": {
            "n_scored": scores.n_scored,
            "median_auroc": scores.median_auroc if scores.n_scored else None,
            "median_shuffled": scores.median_shuffled if scores.n_scored else None,
        },
    }
    return replace(interpretations, table=scored, summary=summary, detection=scores)


def check_interpretations(table: pl.DataFrame) -> None:
    """Refuse a table that breaks the ``interpretations.csv`` contract, naming the first rows.

    The columns are ``INTERPRETATION_COLUMNS`` in order, both labels are non-empty, ``source``
    is one of ``SOURCES`` and ``label_ru`` has Cyrillic unless the row is flagged ``ru_missing``.
    """
    if tuple(table.columns) != INTERPRETATION_COLUMNS:
        raise InterpretationsError(
            f"interpretations: columns {table.columns}, expected {list(INTERPRETATION_COLUMNS)}"
        )
    problems = []
    for row in table.iter_rows(named=True):
        where = f"latent {row['latent']}"
        if not row["label_en"] or not row["label_ru"]:
            problems.append(f"{where}: empty label")
        if row["source"] not in SOURCES:
            problems.append(f"{where}: source {row['source']!r} not in {list(SOURCES)}")
        ru_flagged = RU_MISSING in (row["flags"] or "").split(FLAG_SEPARATOR)
        if not has_cyrillic(row["label_ru"] or "") and not ru_flagged:
            problems.append(f"{where}: label_ru {row['label_ru']!r} has no Cyrillic")
    if problems:
        raise InterpretationsError("interpretations: " + "; ".join(problems[:10]))


def write_interpretations(table: pl.DataFrame, path: Path) -> Path:
    """Check the table against the contract, then write it as UTF-8 CSV atomically."""
    check_interpretations(table)
    path = Path(path)
    with atomic_output(path) as tmp:
        table.write_csv(tmp)
    return path
