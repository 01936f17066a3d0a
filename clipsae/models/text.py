"""Text embeddings: zero-shot class prompts (template ensembles) and concept vocabularies."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import torch
from torch.nn import functional as F
from tqdm.auto import tqdm

from clipsae.models.clip import LoadedClip

DEFAULT_TEMPLATES = ("a photo of a {}.", "a picture of a {}.", "an image of a {}.")


@torch.inference_mode()
def encode_texts(clip: LoadedClip, texts: Sequence[str], batch_size: int = 256) -> np.ndarray:
    """L2-normalised text embeddings, float32, one row per text."""
    if not texts:
        raise ValueError("no texts to embed")
    out = []
    for start in tqdm(range(0, len(texts), batch_size), desc="text", unit="batch", leave=False):
        tokens = clip.tokenizer(list(texts[start : start + batch_size])).to(clip.device)
        with torch.autocast(clip.device.type, enabled=clip.device.type == "cuda"):
            emb = clip.model.encode_text(tokens)
        out.append(F.normalize(emb.float(), dim=-1).cpu())
    return torch.cat(out).numpy()


def class_embeddings(
    clip: LoadedClip, class_names: Sequence[str], templates: Sequence[str] = DEFAULT_TEMPLATES
) -> np.ndarray:
    """One zero-shot classifier row per class: the renormalised mean over prompt templates.

    Averaging normalised embeddings over templates is the prompt ensembling of the CLIP paper;
    it is worth a few points of accuracy over any single template.
    """
    for template in templates:
        if "{}" not in template:
            raise ValueError(f"prompt template {template!r} has no '{{}}' for the class name")
    prompts = [t.format(name) for name in class_names for t in templates]
    emb = encode_texts(clip, prompts).reshape(len(class_names), len(templates), -1).mean(axis=1)
    return emb / np.linalg.norm(emb, axis=1, keepdims=True)
