"""Seed-to-seed stability: how many latents of one SAE reappear in another trained alike.

Latent order is arbitrary, so the two dictionaries are compared after the one-to-one matching
that maximises the total cosine of matched directions (Hungarian algorithm, scipy's
``linear_sum_assignment``). Cosines ignore norms, so encoder columns, whose norms are free,
compare as well as the unit-norm decoder rows. The cost matrix is d_sae × d_sae in float64 and
the matching is cubic in d_sae: thousands of latents take seconds, tens of thousands call for a
subset of latents.
"""

from __future__ import annotations

import numpy as np
import torch
from scipy.optimize import linear_sum_assignment

from clipsae.sae.base import SAE

THRESHOLD = 0.9


def _unit_rows(directions: torch.Tensor) -> np.ndarray:
    rows = directions.detach().double().cpu().numpy()
    return rows / np.maximum(np.linalg.norm(rows, axis=1, keepdims=True), 1e-12)


def match_directions(
    a: torch.Tensor, b: torch.Tensor, threshold: float = THRESHOLD
) -> dict[str, float | int]:
    """Match the rows of ``a`` (n, d) to those of ``b`` (m, d) one-to-one by cosine.

    Returns the number matched (min(n, m)), the mean matched cosine and the fraction of matched
    pairs whose cosine exceeds ``threshold``.
    """
    if a.shape[1] != b.shape[1]:
        raise ValueError(f"directions of different widths: {a.shape[1]} and {b.shape[1]}")
    cosine = _unit_rows(a) @ _unit_rows(b).T
    rows, cols = linear_sum_assignment(cosine, maximize=True)
    matched = cosine[rows, cols]
    return {
        "n_matched": len(matched),
        "mean_cosine": float(matched.mean()),
        "frac_above": float((matched > threshold).mean()),
        "threshold": threshold,
    }


def sae_alignment(a: SAE, b: SAE, threshold: float = THRESHOLD) -> dict[str, dict]:
    """Matched decoder rows and, separately, matched encoder columns of two SAEs."""
    return {
        "decoder": match_directions(a.W_dec, b.W_dec, threshold),
        "encoder": match_directions(a.W_enc.T, b.W_enc.T, threshold),
    }
