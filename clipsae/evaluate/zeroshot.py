"""Zero-shot classification with CLIP alone and with an SAE spliced into it.

CLIP+SAE replaces the activation at the SAE's layer by its reconstruction and lets the model
finish: for ``final`` that is the embedding itself (renormalised like any CLIP embedding); for
``block{N}`` the reconstructed CLS token goes through the remaining blocks. Both variants are
scored on the same images in the same pass, so the difference is the SAE's alone.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence

import numpy as np
import torch
from torch.nn import functional as F

from clipsae.activations.extract import iter_image_batches
from clipsae.data import ImageDataset, Record
from clipsae.models.architectures import parse_layer
from clipsae.models.clip import LoadedClip, VisionActivations

Reconstruct = Callable[[torch.Tensor], torch.Tensor]
# CLIP's trained temperature; fixed so that KL values compare across models.
LOGIT_SCALE = 100.0


class ZeroShotTally:
    """Accumulates top-1 and top-5 accuracy of both variants, their agreement and the KL between
    them (top-5 counts a row when its label is among the 5 best-scored classes, or among all of
    them when there are fewer: then it is 1)."""

    TOP = 5

    def __init__(self, class_embeddings: np.ndarray, logit_scale: float = LOGIT_SCALE) -> None:
        self.classes = torch.as_tensor(class_embeddings, dtype=torch.float32)
        self.scale = logit_scale
        self.n = self.correct_clip = self.correct_sae = self.agree = 0
        self.top_clip = self.top_sae = 0
        self.kl_sum = 0.0

    def _in_top(self, logp: torch.Tensor, labels: torch.Tensor) -> int:
        best = logp.topk(min(self.TOP, logp.shape[-1]), dim=-1).indices.cpu()
        return int((best == labels[:, None]).any(-1).sum())

    def _logits(self, emb: torch.Tensor) -> torch.Tensor:
        return self.scale * F.normalize(emb.float(), dim=-1) @ self.classes.to(emb.device).T

    def update(self, clean: torch.Tensor, spliced: torch.Tensor, labels: torch.Tensor) -> None:
        logp_clip = self._logits(clean).log_softmax(-1)
        logp_sae = self._logits(spliced).log_softmax(-1)
        pred_clip, pred_sae = logp_clip.argmax(-1).cpu(), logp_sae.argmax(-1).cpu()
        labels = labels.cpu()
        self.n += len(labels)
        self.correct_clip += int((pred_clip == labels).sum())
        self.correct_sae += int((pred_sae == labels).sum())
        self.agree += int((pred_clip == pred_sae).sum())
        self.top_clip += self._in_top(logp_clip, labels)
        self.top_sae += self._in_top(logp_sae, labels)
        kl = F.kl_div(logp_sae, logp_clip, log_target=True, reduction="sum")
        self.kl_sum += float(kl)

    def result(self) -> dict:
        if self.n == 0:
            raise ValueError("zero-shot evaluation saw no images")
        acc_clip, acc_sae = self.correct_clip / self.n, self.correct_sae / self.n
        return {
            "n": self.n,
            "n_classes": len(self.classes),
            "accuracy_clip": acc_clip,
            "accuracy_sae": acc_sae,
            "delta_accuracy": acc_sae - acc_clip,
            "top5_clip": self.top_clip / self.n,
            "top5_sae": self.top_sae / self.n,
            "agreement": self.agree / self.n,
            "kl_clip_to_sae": self.kl_sum / self.n,
            "logit_scale": self.scale,
        }


@torch.inference_mode()
def zeroshot_on_embeddings(
    batches: Iterable[tuple[np.ndarray, np.ndarray]],
    class_embeddings: np.ndarray,
    reconstruct: Reconstruct,
    device: torch.device,
) -> dict:
    """For ``final``-layer activations already on disk: (embeddings, labels) batches.

    The embeddings go to ``device``, where ``reconstruct`` must live; the tally follows them.
    """
    tally = ZeroShotTally(class_embeddings)
    for emb, labels in batches:
        clean = torch.as_tensor(emb, device=device)
        tally.update(clean, reconstruct(clean), torch.tensor(labels))
    return {**tally.result(), "method": "embedding"}


@torch.inference_mode()
def zeroshot_spliced(
    clip: LoadedClip,
    dataset: ImageDataset,
    records: Sequence[Record],
    layer: str,
    class_embeddings: np.ndarray,
    reconstruct: Reconstruct,
    *,
    batch_size: int = 256,
    num_workers: int = 0,
) -> dict:
    """For inner layers: run the images, splice the reconstruction in at the CLS token.

    The images go to ``clip.device``; ``reconstruct`` must live there too.
    """
    encoder = VisionActivations(clip.model, parse_layer(layer, clip.arch))
    labels = torch.tensor([r.label for r in records])
    tally = ZeroShotTally(class_embeddings)
    for images, positions in iter_image_batches(
        dataset, records, clip.preprocess, clip.device, batch_size, num_workers, desc="zero-shot"
    ):
        residual = encoder.residual(images)
        clean = encoder.finish(residual)
        spliced = encoder.finish(residual, splice=reconstruct)
        tally.update(clean, spliced, labels[positions])
    return {**tally.result(), "method": "spliced"}
