"""Synthetic activations with a known dictionary, shared by the SAE tests."""

from __future__ import annotations

import numpy as np


def sparse_data(
    n: int, d: int, n_dirs: int, active: int, seed: int
) -> tuple[np.ndarray, np.ndarray]:
    """Rows = non-negative combinations of ``active`` of ``n_dirs`` random unit directions.

    Returns the rows (float32) and the true directions, so a test can check that an SAE
    recovers them.
    """
    rng = np.random.default_rng(seed)
    dirs = rng.normal(size=(n_dirs, d))
    dirs /= np.linalg.norm(dirs, axis=1, keepdims=True)
    picks = np.argsort(rng.random((n, n_dirs)), axis=1)[:, :active]
    coef = np.zeros((n, n_dirs))
    np.put_along_axis(coef, picks, rng.uniform(0.5, 2.0, size=(n, active)), axis=1)
    return (coef @ dirs).astype(np.float32), dirs
