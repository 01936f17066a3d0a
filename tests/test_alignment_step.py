"""The sae_alignment step: two saved SAEs, matched latent to latent, beside random directions."""

from __future__ import annotations

import json

import pytest
import torch

from clipsae.sae import TopKConfig, build_sae
from clipsae.sae.io import save_sae
from clipsae.steps.alignment import align_saes

CFG = TopKConfig(d_in=32, d_sae=64, k=4)


def test_a_permuted_copy_aligns_fully_and_random_directions_do_not(tmp_path):
    sae = build_sae(CFG, torch.Generator().manual_seed(0))
    copy = build_sae(CFG)
    perm = torch.randperm(64, generator=torch.Generator().manual_seed(1))
    with torch.no_grad():
        copy.W_dec.copy_(sae.W_dec[perm])
        copy.W_enc.copy_(sae.W_enc[:, perm])
    save_sae(sae, tmp_path / "a", extra={"train": {"seed": 0}})
    save_sae(copy, tmp_path / "b", extra={"train": {"seed": 1}})

    got = align_saes(sae_a=tmp_path / "a", sae_b=tmp_path / "b", out_json=tmp_path / "al.json",
                     names=("topk", "topk-seed1"))  # fmt: skip

    assert json.loads((tmp_path / "al.json").read_text()) == got
    assert got["decoder"]["mean_cosine"] == pytest.approx(1.0, abs=1e-6)
    assert got["encoder"]["frac_above"] == 1.0 and got["decoder"]["n_matched"] == 64
    assert got["random"]["mean_cosine"] < 0.7 and got["random"]["frac_above"] == 0.0
    assert (got["seeds"], got["saes"], got["d_sae"]) == ([0, 1], ["topk", "topk-seed1"], 64)


def test_dictionaries_of_different_shapes_are_refused(tmp_path):
    save_sae(build_sae(CFG), tmp_path / "a")
    save_sae(build_sae(TopKConfig(d_in=32, d_sae=128, k=4)), tmp_path / "b")
    with pytest.raises(ValueError, match="not trained alike"):
        align_saes(sae_a=tmp_path / "a", sae_b=tmp_path / "b", out_json=tmp_path / "al.json")
