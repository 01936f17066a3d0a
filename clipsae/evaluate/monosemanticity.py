"""The MonoSemanticity score (MS) of Pach et al. 2025, "Sparse Autoencoders Learn Monosemantic
Features in Vision-Language Models": label-free latent quality.

For a unit k (an SAE latent or a raw dimension of the layer) with activations ``a_n`` over N
images, min-max scaled to ``s_n = (a_n - min a) / (max a - min a)``, every pair of distinct
images (n, m) gets the weight ``s_n s_m`` and the score is the weighted mean of the pair's
cosine similarity in an image encoder's embedding ``e``::

    MS_k = sum_{n != m} s_n s_m cos(e_n, e_m) / sum_{n != m} s_n s_m

A unit that fires only on images that look alike scores near 1; one that fires on unrelated
images scores near their mean similarity. With unit-norm embeddings the numerator is
``||sum_n s_n e_n||^2 - sum_n s_n^2`` and the denominator ``(sum_n s_n)^2 - sum_n s_n^2``, so
no N × N matrix is formed: two streaming passes (min and max, then the sums) over row batches
hold at most a batch of activations plus a (d_embed, units) float64 accumulator. Units that
never vary, or that weigh fewer than two images, have no score (NaN).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator

import numpy as np
import torch
from torch.nn import functional as F

from clipsae.activations.shards import batches_of
from clipsae.sae.base import SAE

Batches = Callable[[], Iterable[tuple[np.ndarray | torch.Tensor, np.ndarray | torch.Tensor]]]


def _as64(x: np.ndarray | torch.Tensor, device: torch.device) -> torch.Tensor:
    return torch.as_tensor(x, device=device).double()


def monosemanticity_scores(batches: Batches, device: str | torch.device = "cpu") -> np.ndarray:
    """MS per unit; ``batches()`` yields (activations (B, units), embeddings (B, d_embed)) of
    the same images, the same way on each of its two calls."""
    device = torch.device(device)
    low = high = None
    for acts, _ in batches():
        a = _as64(acts, device)
        low = a.amin(0) if low is None else torch.minimum(low, a.amin(0))
        high = a.amax(0) if high is None else torch.maximum(high, a.amax(0))
    if low is None:
        raise ValueError("no images to score monosemanticity on")
    spread = high - low
    varies = spread > 0
    spread = torch.where(varies, spread, torch.ones_like(spread))
    weighted = total = squares = None
    for acts, emb in batches():
        s = (_as64(acts, device) - low) / spread
        e = F.normalize(_as64(emb, device), dim=1)
        weighted = e.T @ s if weighted is None else weighted + e.T @ s
        total = s.sum(0) if total is None else total + s.sum(0)
        squares = s.pow(2).sum(0) if squares is None else squares + s.pow(2).sum(0)
    numerator = weighted.pow(2).sum(0) - squares
    denominator = total.pow(2) - squares
    # A unit that varies has total >= 1 (its maximum scales to 1); a denominator at round-off
    # level means a single image carries the weight.
    scored = varies & (denominator > 1e-9 * total.pow(2))
    score = numerator / torch.where(scored, denominator, torch.ones_like(denominator))
    return torch.where(scored, score, torch.nan).cpu().numpy()


def image_subset(n: int, max_images: int | None, seed: int = 0) -> np.ndarray:
    """Sorted indices of a seeded subset of ``max_images`` of ``n`` rows (all if None or more)."""
    if max_images is None or max_images >= n:
        return np.arange(n)
    return np.sort(np.random.default_rng(seed).choice(n, size=max_images, replace=False))


def _mean_scored(scores: np.ndarray) -> float:
    finite = scores[np.isfinite(scores)]
    return float(finite.mean()) if len(finite) else float("nan")


def sae_vs_clip_monosemanticity(
    *,
    sae: SAE,
    activations: np.ndarray,
    embeddings: np.ndarray,
    batch_size: int = 1024,
) -> dict[str, float | int]:
    """Mean MS of the SAE's latents and of the raw dimensions of its input layer, on the same
    images: ``activations`` (N, d_in) at the SAE's layer, ``embeddings`` (N, d_embed) of the
    image encoder that judges similarity. Means are over the units that have a score."""
    if len(activations) != len(embeddings):
        raise ValueError(f"{len(activations)} activation rows but {len(embeddings)} embeddings")
    device = sae.W_dec.device

    def dimensions() -> Iterator[tuple[np.ndarray, np.ndarray]]:
        return zip(
            batches_of(activations, batch_size), batches_of(embeddings, batch_size), strict=True
        )

    def latents() -> Iterator[tuple[torch.Tensor, np.ndarray]]:
        with torch.inference_mode():
            for x, emb in dimensions():
                yield sae.encode(torch.as_tensor(x, dtype=torch.float32, device=device)), emb

    ms_sae = monosemanticity_scores(latents, device)
    ms_clip = monosemanticity_scores(dimensions, device)
    return {
        "n_images": len(activations),
        "ms_sae": _mean_scored(ms_sae),
        "ms_sae_scored": int(np.isfinite(ms_sae).sum()),
        "ms_clip": _mean_scored(ms_clip),
        "ms_clip_scored": int(np.isfinite(ms_clip).sum()),
    }
