"""Detection scoring of latent names on held-out images, after EleutherAI delphi's detection score.

A name is worth something only if it picks out the images its latent fires on. delphi shows a
language model activating and non-activating text snippets and asks which ones match the
explanation; for images CLIP's text tower does the reading: the name's text embedding is compared
with each held-out image's CLIP image embedding, and the AUROC of that cosine for separating
images that activate the latent from images that do not is the name's score. 1 means the name
ranks every activating image above every other one, 0.5 is chance.

As in delphi, the activating images are drawn across the quantiles of the latent's non-zero
activations rather than from its top alone, so a name that only describes the strongest
examples loses points on the weak ones. A baseline scores the same samples with the names
permuted across latents: the gap between the two medians says how much the names carry beyond
what any name of that vocabulary would.

The AUROC depends only on the ranking of the images by one text embedding, so the constant
offset between CLIP's image and text embeddings (the modality gap) does not affect it and no
centring is needed.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass

import numpy as np
import polars as pl
import torch
from sklearn.metrics import roc_auc_score

Encoder = Callable[[torch.Tensor], torch.Tensor]

SCORE_COLUMNS = ("latent", "auroc", "auroc_shuffled", "n_positive", "n_negative")


@dataclass(frozen=True)
class DetectionSampling:
    """Which held-out images a name is scored on; delphi draws activating examples per quantile.

    Up to ``per_quantile`` activating images from each of ``n_quantiles`` equal-count bins of
    the latent's non-zero activations, up to ``n_negative`` images where it is zero; a latent with
    fewer than ``min_positive`` activating images is not scored. The defaults live in the
    config schema only (``interpretation.scoring`` and ``.simulation`` differ).
    """

    n_quantiles: int
    per_quantile: int
    n_negative: int
    min_positive: int
    seed: int

    def __post_init__(self) -> None:
        for key in ("n_quantiles", "per_quantile", "n_negative", "min_positive"):
            if getattr(self, key) < 1:
                raise ValueError(f"{key} must be at least 1, got {getattr(self, key)}")


@dataclass(frozen=True)
class DetectionScores:
    """Per-latent detection AUROCs of the names and of permuted names, and their medians.

    ``per_latent`` has ``SCORE_COLUMNS``; ``auroc`` is null where a latent fires on fewer than
    ``DetectionSampling.min_positive`` of the images or on all of them (nothing to rank), and the
    medians skip it.
    """

    per_latent: pl.DataFrame
    median_auroc: float
    median_shuffled: float
    n_scored: int


def latent_activations(
    encode: Encoder,
    batches: Iterable[np.ndarray],
    *,
    latents: Sequence[int],
    device: torch.device | None = None,
) -> np.ndarray:
    """The codes of ``latents`` only, (rows, len(latents)) float32, from a stream of activations.

    Keeping only the named latents' columns bounds the memory by rows x named latents instead of
    rows x d_sae, which matters for wide SAEs over large test splits. ``encode`` runs on
    ``device`` (default CPU), where the SAE lives.
    """
    device = device or torch.device("cpu")
    columns = torch.as_tensor(np.asarray(latents, dtype=np.int64), device=device)
    out = []
    with torch.inference_mode():
        for batch in batches:
            codes = encode(torch.as_tensor(np.asarray(batch, dtype=np.float32), device=device))
            out.append(codes[:, columns].float().cpu().numpy())
    if not out:
        raise ValueError("latent_activations got no rows: the batch stream was empty")
    return np.concatenate(out)


def sample_detection_rows(
    activations: np.ndarray, *, sampling: DetectionSampling, rng: np.random.Generator
) -> tuple[np.ndarray, np.ndarray]:
    """Row indices of activating images (across quantiles) and of non-activating ones.

    The non-zero activations are sorted and cut into ``sampling.n_quantiles`` bins of equal
    count; up to ``per_quantile`` rows are drawn without replacement from each bin. Up to
    ``n_negative`` rows are drawn uniformly from the rows where the latent is zero.
    """
    activations = np.asarray(activations)
    active = np.flatnonzero(activations > 0)
    by_value = active[np.argsort(activations[active], kind="stable")]
    bins = np.array_split(by_value, min(sampling.n_quantiles, len(by_value)) or 1)
    per_bin = sampling.per_quantile
    positive = [rng.choice(b, size=min(per_bin, len(b)), replace=False) for b in bins]
    silent = np.flatnonzero(activations <= 0)
    negative = rng.choice(silent, size=min(sampling.n_negative, len(silent)), replace=False)
    return np.sort(np.concatenate(positive)).astype(np.int64), np.sort(negative).astype(np.int64)


def _derangement(n: int, rng: np.random.Generator) -> np.ndarray:
    """A random permutation with no fixed point (a random n-cycle), so no latent keeps its name."""
    order = rng.permutation(n)
    target = np.empty(n, dtype=np.int64)
    target[order] = np.roll(order, -1)
    return target


def _unit_rows(matrix: np.ndarray) -> np.ndarray:
    matrix = np.asarray(matrix, dtype=np.float32)
    return matrix / np.maximum(np.linalg.norm(matrix, axis=1, keepdims=True), 1e-12)


def _check_shapes(
    activations: np.ndarray, name_embeddings: np.ndarray, image_embeddings: np.ndarray, n: int
) -> None:
    if activations.ndim != 2 or activations.shape[1] != n:
        raise ValueError(f"activations must be (images, {n} latents), got {activations.shape}")
    if name_embeddings.shape[0] != n:
        raise ValueError(f"{name_embeddings.shape[0]} name embeddings for {n} latents")
    if image_embeddings.shape[0] != activations.shape[0]:
        raise ValueError(
            f"{image_embeddings.shape[0]} image embeddings but {activations.shape[0]} rows of "
            "activations: they must come from the same images in the same order"
        )
    if image_embeddings.shape[1] != name_embeddings.shape[1]:
        raise ValueError(
            f"image embeddings have width {image_embeddings.shape[1]}, names "
            f"{name_embeddings.shape[1]}: not the same CLIP space"
        )


def score_names(
    *,
    latents: Sequence[int],
    name_embeddings: np.ndarray,
    activations: np.ndarray,
    image_embeddings: np.ndarray,
    sampling: DetectionSampling,
) -> DetectionScores:
    """Score each latent's name by how well it ranks the latent's activating images first.

    ``name_embeddings`` (L, d) are the CLIP text embeddings of the names of ``latents`` (L),
    ``activations`` (N, L) those latents' codes on N held-out images and ``image_embeddings``
    (N, d) the same images' CLIP image embeddings (the ``final`` activations). Each latent gets
    one sample of images (``sample_detection_rows``), scored once with its own name and once
    with the name of another latent (a random derangement), so the two AUROCs differ only by
    the name. Deterministic for a given ``sampling.seed``.
    """
    names = _unit_rows(name_embeddings)
    images = _unit_rows(image_embeddings)
    activations = np.asarray(activations)
    _check_shapes(activations, names, images, len(latents))
    rng = np.random.default_rng(sampling.seed)
    shuffled = names[_derangement(len(latents), rng)] if len(latents) > 1 else names
    rows = []
    for j, latent in enumerate(latents):
        pos, neg = sample_detection_rows(activations[:, j], sampling=sampling, rng=rng)
        auroc = shuffled_auroc = None
        if len(pos) >= sampling.min_positive and len(neg) > 0:
            sample = images[np.concatenate([pos, neg])]
            truth = np.r_[np.ones(len(pos)), np.zeros(len(neg))]
            auroc = float(roc_auc_score(truth, sample @ names[j]))
            shuffled_auroc = float(roc_auc_score(truth, sample @ shuffled[j]))
        rows.append((int(latent), auroc, shuffled_auroc, len(pos), len(neg)))
    per_latent = pl.DataFrame(
        rows,
        schema={
            "latent": pl.Int64,
            "auroc": pl.Float64,
            "auroc_shuffled": pl.Float64,
            "n_positive": pl.Int64,
            "n_negative": pl.Int64,
        },
        orient="row",
    )
    scored = per_latent.drop_nulls("auroc")
    return DetectionScores(
        per_latent=per_latent,
        median_auroc=float(scored["auroc"].median()) if len(scored) else float("nan"),
        median_shuffled=float(scored["auroc_shuffled"].median()) if len(scored) else float("nan"),
        n_scored=len(scored),
    )
