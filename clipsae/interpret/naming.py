"""Name SAE latents offline by the concept whose CLIP text embedding best matches their direction.

A latent's decoder direction lives in the CLIP embedding space, so the concept word with the
highest cosine to it is a cheap first name. The vocabulary is bilingual (``en``, ``ru``) so every
name exists in both languages without a translation step. The ``margin`` between the best and the
second-best concept says how distinct the name is: a latent that matches ten concepts about
equally gets a low margin and deserves a look at its collage before its name is trusted.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import numpy as np
import polars as pl
import torch
from tqdm import tqdm

from clipsae.runtime.atomic import atomic_output

VOCAB_COLUMNS = ("en", "ru")
NAME_COLUMNS = ("latent", "label_en", "label_ru", "score", "top_en", "top_ru", "margin")


class VocabError(ValueError):
    """A vocabulary file that cannot be used; the message names the file and the line."""


def _parse_vocab_line(path: Path, number: int, line: str) -> tuple[str, str]:
    cells = line.split("\t")
    if len(cells) != len(VOCAB_COLUMNS):
        raise VocabError(f"{path}, line {number}: expected 2 tab-separated cells, got {len(cells)}")
    en, ru = (cell.strip() for cell in cells)
    if not en or not ru:
        raise VocabError(f"{path}, line {number}: empty cell in {line!r}")
    return en, ru


def load_bilingual_vocab(path: Path) -> pl.DataFrame:
    """Read a UTF-8 TSV with the header ``en<TAB>ru`` into a frame with columns ``en``, ``ru``.

    Duplicate English terms are refused because they would get identical embeddings and make
    the best-minus-second ``margin`` of any latent that matches them zero.
    """
    path = Path(path)
    try:
        lines = path.read_text(encoding="utf-8").splitlines()
    except UnicodeDecodeError as err:
        raise VocabError(f"{path}: not valid UTF-8 ({err})") from err
    if not lines or tuple(cell.strip() for cell in lines[0].split("\t")) != VOCAB_COLUMNS:
        raise VocabError(f"{path}, line 1: expected the header 'en<TAB>ru'")
    first_line: dict[str, int] = {}
    rows = []
    for number, line in enumerate(lines[1:], start=2):
        en, ru = _parse_vocab_line(path, number, line)
        if en in first_line:
            raise VocabError(f"{path}, line {number}: {en!r} repeats line {first_line[en]}")
        first_line[en] = number
        rows.append((en, ru))
    if not rows:
        raise VocabError(f"{path}: no concepts after the header")
    return pl.DataFrame(rows, schema=list(VOCAB_COLUMNS), orient="row")


def _unit_rows(matrix: torch.Tensor) -> torch.Tensor:
    return matrix / matrix.norm(dim=1, keepdim=True).clamp_min(1e-12)


def _prepare_text(text_embeddings: np.ndarray, center: bool) -> torch.Tensor:
    text = torch.as_tensor(np.asarray(text_embeddings, dtype=np.float32))
    if center:
        text = text - text.mean(dim=0, keepdim=True)
    return _unit_rows(text)


def _check_inputs(
    directions: np.ndarray, text_embeddings: np.ndarray, vocab: pl.DataFrame, top_n: int
) -> None:
    if directions.ndim != 2 or text_embeddings.ndim != 2:
        raise ValueError("directions and text_embeddings must be 2-D arrays")
    if directions.shape[1] != text_embeddings.shape[1]:
        raise ValueError(
            f"directions have width {directions.shape[1]}, "
            f"text embeddings {text_embeddings.shape[1]}: not the same CLIP space"
        )
    if len(vocab) != len(text_embeddings):
        raise ValueError(f"{len(vocab)} vocabulary rows but {len(text_embeddings)} text embeddings")
    missing = set(VOCAB_COLUMNS) - set(vocab.columns)
    if missing:
        raise ValueError(f"vocabulary frame lacks columns {sorted(missing)}")
    if len(vocab) < 2 or not 1 <= top_n <= len(vocab):
        raise ValueError(f"need at least 2 concepts and 1 <= top_n <= {len(vocab)}, got {top_n}")


def name_latents(
    directions: np.ndarray,
    text_embeddings: np.ndarray,
    vocab: pl.DataFrame,
    top_n: int = 3,
    latents: Sequence[int] | None = None,
    center: bool = True,
    chunk_size: int = 1024,
) -> pl.DataFrame:
    """Name each latent by the concepts whose text embeddings have the highest cosine to it.

    ``directions`` are decoder rows (d_sae, d), ``text_embeddings`` (V, d) in ``vocab`` order.
    With ``center`` (the default) the mean text embedding is subtracted first. CLIP text embeddings
    share one large common component (mean pairwise cosine about 0.8 for the COCO class names on
    ViT-B/32), while decoder directions, learnt on image activations across the modality gap, carry
    only concept-specific parts; centring compares like with like, doubles the best-minus-second
    margins and keeps concepts with a small shared component from winning by their norm alone.
    Turn it off for directions that are themselves raw text embeddings. Latents are processed
    ``chunk_size`` at a time, so d_sae = 50k against V = 20k never builds the full similarity
    matrix.
    """
    _check_inputs(directions, text_embeddings, vocab, top_n)
    ids = np.arange(len(directions)) if latents is None else np.asarray(latents, dtype=np.int64)
    text = _prepare_text(text_embeddings, center)
    keep = max(top_n, 2)  # the margin needs the second best
    scores, indices = [], []
    with torch.inference_mode():
        for start in tqdm(range(0, len(ids), chunk_size), desc="naming latents", unit="chunk"):
            chunk = torch.as_tensor(np.asarray(directions[ids[start : start + chunk_size]]))
            best = (_unit_rows(chunk.float()) @ text.T).topk(keep, dim=1)
            scores.append(best.values.numpy())
            indices.append(best.indices.numpy())
    if not scores:
        raise ValueError("no latents to name")
    return _names_frame(ids, np.concatenate(scores), np.concatenate(indices), vocab, top_n)


def _names_frame(
    ids: np.ndarray, scores: np.ndarray, indices: np.ndarray, vocab: pl.DataFrame, top_n: int
) -> pl.DataFrame:
    en = vocab["en"].to_numpy()
    ru = vocab["ru"].to_numpy()
    top = indices[:, :top_n]
    return pl.DataFrame(
        {
            "latent": ids,
            "label_en": en[indices[:, 0]],
            "label_ru": ru[indices[:, 0]],
            "score": scores[:, 0].astype(np.float64),
            "top_en": ["; ".join(row) for row in en[top]],
            "top_ru": ["; ".join(row) for row in ru[top]],
            "margin": (scores[:, 0] - scores[:, 1]).astype(np.float64),
        }
    )


def write_names_csv(names: pl.DataFrame, path: Path) -> Path:
    """Write the names table as UTF-8 CSV atomically (Cyrillic stays readable in any editor)."""
    path = Path(path)
    with atomic_output(path) as tmp:
        names.write_csv(tmp)
    return path
