"""Text embeddings for zero-shot classes."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from clipsae.models.clip import load_clip
from clipsae.models.text import class_embeddings, encode_texts


@pytest.fixture(scope="module")
def tiny():
    torch.manual_seed(0)
    return load_clip("clipsae-tiny-vit", "none", device="cpu")


def test_prompt_ensemble_is_the_renormalised_mean_of_template_embeddings(tiny):
    names = ["circle", "red square"]
    templates = ["a photo of a {}.", "a {}."]
    got = class_embeddings(tiny, names, templates)
    per_template = np.stack([encode_texts(tiny, [t.format(n) for n in names]) for t in templates])
    mean = per_template.mean(axis=0)
    expected = mean / np.linalg.norm(mean, axis=1, keepdims=True)
    np.testing.assert_allclose(got, expected, rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(np.linalg.norm(got, axis=1), 1.0, rtol=1e-6)


def test_batches_do_not_change_embeddings(tiny):
    texts = [f"a {c} shape." for c in ["red", "green", "blue", "white", "black"]]
    np.testing.assert_allclose(
        encode_texts(tiny, texts, batch_size=2), encode_texts(tiny, texts), atol=1e-6
    )


def test_bad_templates_and_empty_input_are_refused(tiny):
    with pytest.raises(ValueError, match="has no '\\{\\}'"):
        class_embeddings(tiny, ["circle"], ["a photo"])
    with pytest.raises(ValueError, match="no texts"):
        encode_texts(tiny, [])
