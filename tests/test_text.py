"""Text embeddings for zero-shot classes."""

from __future__ import annotations

import json

import numpy as np
import polars as pl
import pytest
import torch

from clipsae.models.clip import load_clip
from clipsae.models.text import class_embeddings, encode_texts
from clipsae.steps.text import embed_classes


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


def test_a_published_ensembles_class_names_replace_the_datasets_label_for_label(tmp_path):
    classes = tmp_path / "classes.json"
    classes.write_text(json.dumps({"classes": ["circle_1", "sq"]}))
    model = {"arch": "clipsae-tiny-vit", "pretrained": "none", "seed": 0}
    out = tmp_path / "classes.npy"
    prompts = {"templates": ["a {}."], "classes": ["circle", "square"]}
    embed_classes(model=model, weights=None, classes_json=classes, prompts=prompts,
                  out_npy=out, device="cpu")  # fmt: skip
    assert pl.read_parquet(out.with_suffix(".parquet"))["name"].to_list() == ["circle", "square"]
    with pytest.raises(ValueError, match="3 class names do not match the 2 classes of"):
        embed_classes(model=model, weights=None, classes_json=classes, out_npy=out, device="cpu",
                      prompts={**prompts, "classes": ["a", "b", "c"]})  # fmt: skip
