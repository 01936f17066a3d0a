"""The eval_splice step: SpLiCE on stored final embeddings, against planted concepts."""

from __future__ import annotations

import json

import numpy as np
import pytest
from test_extras_step import write_split

from clipsae.steps.splice import eval_splice

D, N_CLASSES, N_CONCEPTS = 16, 3, 12


def test_splice_explains_each_image_by_its_planted_class_concept(tmp_path):
    """Images are a shared offset plus one of three concept directions; the vocabulary holds
    those three among twelve concepts. SpLiCE finds them: few concepts per image, a close
    reconstruction and CLIP's zero-shot accuracy."""
    rng = np.random.default_rng(0)
    concepts = rng.normal(size=(N_CONCEPTS, D))
    concepts /= np.linalg.norm(concepts, axis=1, keepdims=True)
    offset = 3.0 * rng.normal(size=D) / np.sqrt(D)
    centres = offset + 2.0 * concepts[:N_CLASSES]
    write_split(tmp_path / "train", rng, 200, centres)
    write_split(tmp_path / "test", rng, 80, centres)
    np.save(tmp_path / "vocab.npy", concepts.astype(np.float32))
    classes = centres / np.linalg.norm(centres, axis=1, keepdims=True)
    np.save(tmp_path / "classes.npy", classes.astype(np.float32))

    got = eval_splice(train_acts=tmp_path / "train", test_acts=tmp_path / "test",
                      classes_npy=tmp_path / "classes.npy", vocab_npy=tmp_path / "vocab.npy",
                      out_json=tmp_path / "splice.json", l1=0.5, max_images=60,
                      seed=0)  # fmt: skip

    assert json.loads((tmp_path / "splice.json").read_text()) == got
    assert (got["n"], got["n_test_split"], got["n_concepts"], got["seed"]) == (60, 80, 12, 0)
    assert got["accuracy_clip"] > 0.9
    assert got["accuracy_sae"] == pytest.approx(got["accuracy_clip"], abs=0.05)
    assert 1 <= got["l0"] < 3 and got["cosine"] > 0.85
    assert got["method"] == "splice" and got["l1"] == 0.5
    # A weaker L1 keeps more concepts per image, and reconstructs closer.
    dense = eval_splice(train_acts=tmp_path / "train", test_acts=tmp_path / "test",
                         classes_npy=tmp_path / "classes.npy", vocab_npy=tmp_path / "vocab.npy",
                         out_json=tmp_path / "s2.json", l1=0.05, max_images=None,
                         seed=0)  # fmt: skip
    assert dense["n"] == 80 and dense["l0"] > got["l0"] + 3
    assert dense["cosine"] > got["cosine"]
