"""Linear probe: does an SAE keep what a supervised read-out of the embedding uses?

Zero-shot only tests the directions of the class prompts; a logistic regression fitted on the
frozen CLIP embeddings of the train split tests every direction a linear classifier finds useful.
The probe is fitted once, on CLIP, and scored on the test split twice: on the CLIP embeddings and
on their SAE reconstructions. The SAE is judged by the probe CLIP's features trained, as a model
spliced with the SAE would be judged by the heads trained on CLIP; fitting a second probe on
the reconstructions would measure what they can still learn, a different question.
"""

from __future__ import annotations

import numpy as np
import torch
from sklearn.linear_model import LogisticRegression
from sklearn.preprocessing import normalize

from clipsae.activations.shards import batches_of
from clipsae.evaluate.zeroshot import Reconstruct


@torch.inference_mode()
def reconstruct_rows(
    reconstruct: Reconstruct, x: np.ndarray, *, device: torch.device, batch_size: int = 4096
) -> np.ndarray:
    """``reconstruct`` applied to the rows of ``x`` in batches, back as float32 on the CPU."""
    out = [
        reconstruct(torch.as_tensor(batch, dtype=torch.float32, device=device)).float().cpu()
        for batch in batches_of(x, batch_size)
    ]
    return torch.cat(out).numpy()


def fit_probe(
    x: np.ndarray, labels: np.ndarray, *, c: float = 1.0, max_iter: int = 1000
) -> LogisticRegression:
    """Multinomial logistic regression (L-BFGS, L2 penalty ``1/c``) on L2-normalised rows.

    Rows are normalised because CLIP's similarity is the cosine: the norm of an embedding carries
    no class information, and a reconstruction is compared with its direction, as in zero-shot.
    """
    probe = LogisticRegression(C=c, max_iter=max_iter)
    return probe.fit(normalize(np.asarray(x, dtype=np.float64)), labels)


def probe_comparison(
    probe: LogisticRegression, clean: np.ndarray, reconstructed: np.ndarray, labels: np.ndarray
) -> dict:
    """Accuracy of ``probe`` on both versions of the test rows, Δ, the mean KL from the CLIP
    class distribution to the CLIP+SAE one and the fraction of rows whose argmax agrees."""
    if len(labels) == 0:
        raise ValueError("the linear probe has no test rows")
    logp_clip = probe.predict_log_proba(normalize(np.asarray(clean, dtype=np.float64)))
    logp_sae = probe.predict_log_proba(normalize(np.asarray(reconstructed, dtype=np.float64)))
    pred_clip = probe.classes_[logp_clip.argmax(axis=1)]
    pred_sae = probe.classes_[logp_sae.argmax(axis=1)]
    acc_clip, acc_sae = float((pred_clip == labels).mean()), float((pred_sae == labels).mean())
    kl = (np.exp(logp_clip) * (logp_clip - logp_sae)).sum(axis=1)
    return {
        "n_test": len(labels),
        "n_classes": len(probe.classes_),
        "probe_accuracy_clip": acc_clip,
        "probe_accuracy_sae": acc_sae,
        "probe_delta_accuracy": acc_sae - acc_clip,
        "probe_kl_clip_to_sae": float(kl.mean()),
        "probe_agreement": float((pred_clip == pred_sae).mean()),
    }


def linear_probe(
    *,
    train: tuple[np.ndarray, np.ndarray],
    test: tuple[np.ndarray, np.ndarray],
    reconstruct: Reconstruct,
    device: torch.device,
    c: float = 1.0,
    max_iter: int = 1000,
) -> dict:
    """Fit on ``train`` = (CLIP rows, labels), score on ``test`` and on its reconstruction."""
    (x_train, y_train), (x_test, y_test) = train, test
    probe = fit_probe(x_train, y_train, c=c, max_iter=max_iter)
    recon = reconstruct_rows(reconstruct, x_test, device=device)
    result = probe_comparison(probe, x_test, recon, np.asarray(y_test))
    return {**result, "n_train": len(y_train), "probe_c": c}
