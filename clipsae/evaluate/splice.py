"""A SpLiCE baseline (Bhalla et al. 2024, "Interpreting CLIP with Sparse Linear Concept
Embeddings"): an interpretable-by-construction decomposition to compare SAEs with.

Each image embedding is written as a non-negative sparse combination of concept text
embeddings, with no training. Both sides are mean-centred first: CLIP's image and text
embeddings sit in two cones apart from each other (the modality gap), so raw text directions
explain an image poorly. The concepts are normalised, centred on their own mean and renormalised;
an image is normalised, centred on ``image_mean`` (the mean normalised image embedding of a
reference set; SpLiCE uses MSCOCO, a train split serves here) and renormalised. The weights
solve ``min_{w >= 0} ||D^T w - z||^2 + l1 ||w||_1``, by scikit-learn's coordinate-descent
Lasso; the reconstruction adds ``image_mean`` back and renormalises, so it is a CLIP-like
embedding that zero-shot can score.
"""

from __future__ import annotations

from collections.abc import Iterable

import numpy as np
import torch
from sklearn.linear_model import Lasso
from sklearn.preprocessing import normalize

from clipsae.evaluate.zeroshot import ZeroShotTally


class SpliceDecomposer:
    """Concept weights and reconstructions of image embeddings over one concept vocabulary.

    Calling it on a tensor of embeddings returns their reconstructions, so it can stand where
    an SAE's reconstruction does (``zeroshot_on_embeddings``, the linear probe).
    """

    def __init__(
        self,
        concepts: np.ndarray,
        image_mean: np.ndarray,
        *,
        l1: float = 0.15,
        max_iter: int = 10000,
        tol: float = 1e-6,
    ) -> None:
        unit = normalize(np.asarray(concepts, dtype=np.float64))
        self.dictionary = normalize(unit - unit.mean(axis=0))
        self.image_mean = np.asarray(image_mean, dtype=np.float64)
        if self.image_mean.shape != (self.dictionary.shape[1],):
            raise ValueError(
                f"image_mean has shape {self.image_mean.shape}, "
                f"the concepts are {self.dictionary.shape[1]}-dimensional"
            )
        self.l1 = l1
        # scikit-learn minimises ||y - Xw||^2 / (2 n_samples) + alpha ||w||_1, with one
        # sample per embedding dimension here.
        self._lasso = Lasso(
            alpha=l1 / (2 * self.dictionary.shape[1]),
            positive=True,
            fit_intercept=False,
            max_iter=max_iter,
            tol=tol,
        )

    def weights(self, embeddings: np.ndarray) -> np.ndarray:
        """Non-negative concept weights (N, n_concepts) of image embeddings (N, d)."""
        x = normalize(np.asarray(embeddings, dtype=np.float64))
        z = normalize(x - self.image_mean)
        coef = self._lasso.fit(self.dictionary.T, z.T).coef_
        return coef.reshape(len(z), len(self.dictionary))

    def recompose(self, weights: np.ndarray) -> np.ndarray:
        """Unit-norm CLIP-space embeddings (N, d) from concept weights."""
        return normalize(normalize(weights @ self.dictionary) + self.image_mean)

    def __call__(self, x: torch.Tensor) -> torch.Tensor:
        recon = self.recompose(self.weights(x.detach().cpu().numpy()))
        return torch.as_tensor(recon, dtype=x.dtype, device=x.device)


def splice_evaluation(
    decomposer: SpliceDecomposer,
    batches: Iterable[tuple[np.ndarray, np.ndarray]],
    class_embeddings: np.ndarray,
) -> dict:
    """Zero-shot accuracy of the SpLiCE reconstructions (the ``*_sae`` keys of
    ``ZeroShotTally``, so the row reads like a CLIP+SAE one), the mean number of concepts used
    (``l0``) and the mean cosine between an embedding and its reconstruction."""
    tally = ZeroShotTally(class_embeddings)
    l0 = cosine = 0.0
    for emb, labels in batches:
        weights = decomposer.weights(emb)
        recon = decomposer.recompose(weights)
        l0 += float((weights > 0).sum())
        cosine += float((normalize(np.asarray(emb, dtype=np.float64)) * recon).sum())
        tally.update(torch.as_tensor(emb), torch.as_tensor(recon), torch.as_tensor(labels))
    result = tally.result()
    return {
        **result,
        "l0": l0 / result["n"],
        "cosine": cosine / result["n"],
        "n_concepts": len(decomposer.dictionary),
        "l1": decomposer.l1,
        "method": "splice",
    }
