"""Seed-to-seed alignment of SAE dictionaries by Hungarian matching."""

from __future__ import annotations

import math

import pytest
import torch
from saes import trained_sae
from sparse_data import sparse_data

from clipsae.evaluate.alignment import match_directions, sae_alignment
from clipsae.sae import TopKConfig, TrainConfig, build_sae

CFG = TopKConfig(d_in=32, d_sae=64, k=4)


def test_a_permuted_copy_aligns_perfectly():
    sae = build_sae(CFG, torch.Generator().manual_seed(0))
    with torch.no_grad():
        sae.W_enc.mul_(torch.rand(64) + 0.5)  # free encoder norms: cosines ignore them
    copy = build_sae(CFG)
    perm = torch.randperm(64, generator=torch.Generator().manual_seed(1))
    with torch.no_grad():
        copy.W_dec.copy_(sae.W_dec[perm])
        copy.W_enc.copy_(sae.W_enc[:, perm])
    result = sae_alignment(sae, copy)
    for part in ("decoder", "encoder"):
        assert result[part]["mean_cosine"] == pytest.approx(1.0, abs=1e-6)
        assert result[part]["frac_above"] == 1.0
        assert result[part]["n_matched"] == 64


def test_independent_seeds_align_clearly_below_one_but_above_chance(tmp_path):
    x, _ = sparse_data(2000, 32, 64, 3, seed=0)
    trained = []
    for seed in (0, 1):
        tcfg = TrainConfig(lr=1e-2, batch_size=100, epochs=3, warmup_frac=5 / 60, seed=seed)
        trained.append(trained_sae(x, CFG, tcfg, tmp_path / str(seed)))
    chance = sae_alignment(*(build_sae(CFG, torch.Generator().manual_seed(s)) for s in (0, 1)))
    result = sae_alignment(*trained)
    # Measured: decoder 0.47 trained vs 0.36 for two random initialisations.
    assert chance["decoder"]["mean_cosine"] + 0.05 < result["decoder"]["mean_cosine"] < 0.9
    assert result["encoder"]["mean_cosine"] < 0.9
    assert result["decoder"]["frac_above"] < 0.5


def unit(degrees: float) -> list[float]:
    return [math.cos(math.radians(degrees)), math.sin(math.radians(degrees))]


def test_matching_maximises_the_total_not_each_pair_greedily():
    a = torch.tensor([unit(0), unit(60)])
    b = torch.tensor([unit(25), unit(-37), unit(180)])
    # Greedy takes the best pair a0-b0 (cos 25°) and leaves a1 with b1 (cos 97° < 0); the
    # optimum pairs a0-b1 and a1-b0 (cos 37° + cos 35°), one-to-one.
    result = match_directions(a, b, threshold=0.8)
    optimum = (math.cos(math.radians(37)) + math.cos(math.radians(35))) / 2
    assert result["n_matched"] == 2
    assert result["mean_cosine"] == pytest.approx(optimum, abs=1e-6)
    assert result["frac_above"] == 0.5  # cos 37° = 0.799 < 0.8 < cos 35° = 0.819
    with pytest.raises(ValueError, match="widths"):
        match_directions(a, torch.ones(2, 3))
