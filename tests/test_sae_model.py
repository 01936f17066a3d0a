"""TopK SAE: shapes, sparsity, sparse autograd kernels against dense autograd, checkpoint I/O."""

from __future__ import annotations

import json

import pytest
import torch

from clipsae.sae import SAEConfig, TopKConfig, TopKSAE, build_sae, load_sae, save_sae
from clipsae.sae.ops import (
    ActiveSet,
    batch_topk,
    gathered_linear,
    sorted_topk,
    sparse_decode,
)


def _sae(
    d_in: int = 16, d_sae: int = 64, k: int = 4, scale: float = 1.0, seed: int = 0, **cfg_kw
) -> TopKSAE:
    sae = build_sae(
        TopKConfig(d_in=d_in, d_sae=d_sae, k=k, input_scale=scale, **cfg_kw),
        torch.Generator().manual_seed(seed),
    )
    with torch.no_grad():
        gen = torch.Generator().manual_seed(seed + 1)
        sae.b_dec.copy_(torch.randn(d_in, generator=gen))
        sae.b_enc.copy_(0.1 * torch.randn(d_sae, generator=gen))
    return sae


def test_shapes_and_exactly_k_active() -> None:
    sae = _sae()
    with torch.no_grad():
        sae.b_enc.fill_(100.0)  # every pre-activation positive: top-k must keep exactly k
    x = torch.randn(32, 16)
    codes = sae.encode(x)
    assert codes.shape == (32, 64)
    assert sae(x).shape == (32, 16)
    assert sae.W_enc.shape == (16, 64) and sae.W_dec.shape == (64, 16)
    assert torch.equal((codes > 0).sum(dim=1), torch.full((32,), 4))
    assert (codes >= 0).all()


def test_at_most_k_active_and_they_are_the_largest() -> None:
    sae = _sae()
    x = torch.randn(64, 16)
    codes = sae.encode(x)
    dense = sae.dense_codes(x)
    assert ((codes > 0).sum(dim=1) <= 4).all()
    kth = dense.topk(4, dim=1).values[:, -1:]
    active = codes > 0
    assert torch.equal(codes[active], dense[active])
    assert (dense[active] >= kth.expand_as(dense)[active]).all()


def test_sparse_forward_matches_dense_decode() -> None:
    sae = _sae(scale=1.7).double()
    x = torch.randn(32, 16, dtype=torch.float64)
    codes, x_hat = sae.forward_with_codes(x)
    torch.testing.assert_close(x_hat, sae.decode(codes), rtol=0, atol=1e-12)
    torch.testing.assert_close(sae(x), x_hat, rtol=0, atol=0)


def _dense_topk_loss(sae: TopKSAE, x: torch.Tensor) -> torch.Tensor:
    target = x * sae.scale
    pre = (target - sae.b_dec) @ sae.W_enc + sae.b_enc
    values, indices = pre.topk(sae.k, dim=1)
    codes = torch.zeros_like(pre).scatter(1, indices, values.relu())
    return (target - (codes @ sae.W_dec + sae.b_dec)).pow(2).mean()


def test_sparse_gradients_equal_dense_autograd() -> None:
    sae = _sae(scale=0.6, aux_k_coef=0.0).double()
    x = torch.randn(40, 16, dtype=torch.float64)
    dead = torch.zeros(64, dtype=torch.bool)
    sae.train_loss(x, dead, 1.0).loss.backward()
    sparse = {n: p.grad.clone() for n, p in sae.named_parameters()}
    sae.zero_grad()
    _dense_topk_loss(sae, x).backward()
    for name, p in sae.named_parameters():
        torch.testing.assert_close(sparse[name], p.grad, rtol=1e-10, atol=1e-12, msg=name)


@pytest.mark.parametrize("variable", [False, True])
def test_kernels_gradcheck(variable: bool) -> None:
    """Both kernels against finite differences, on k per row and on rows of 0 to 5 entries."""
    gen = torch.Generator().manual_seed(3)
    x = torch.randn(5, 6, dtype=torch.float64, generator=gen, requires_grad=True)
    w_enc = torch.randn(6, 9, dtype=torch.float64, generator=gen, requires_grad=True)
    b_enc = torch.randn(9, dtype=torch.float64, generator=gen, requires_grad=True)
    w_dec = torch.randn(9, 6, dtype=torch.float64, generator=gen, requires_grad=True)
    pre = (x @ w_enc + b_enc).detach()
    if variable:
        keep = torch.rand(5, 9, generator=gen) < torch.tensor([[0.0], [0.2], [0.5], [0.8], [1.0]])
        chosen = ActiveSet.where(pre, keep)
        assert len(set(chosen.crow.diff().tolist())) > 1  # rows of different widths
    else:
        chosen = ActiveSet.fixed_width(*sorted_topk(pre, 3))
    rows = chosen.rows()

    def encode_decode(x, w_enc, b_enc, w_dec):
        values = (x @ w_enc + b_enc)[rows, chosen.indices]
        active = gathered_linear(x, w_enc, b_enc, chosen._replace(values=values))
        return sparse_decode(active, w_dec)

    assert torch.autograd.gradcheck(encode_decode, (x, w_enc, b_enc, w_dec))


@pytest.mark.parametrize(
    ("batch", "offset", "oversample", "fast"),
    [
        (50, -1.0, 2.0, True),
        (50, -1.0, 0.5, False),
        (50, -2.0, 2.0, True),
        (50, -2.0, 0.5, False),
        (1000, -1.0, 2.0, True),
        (1000, -1.0, 0.3, False),
    ],
)
def test_batch_topk_equals_topk_over_the_flattened_batch(
    batch: int, offset: float, oversample: float, fast: bool
) -> None:
    """The sampled bound, the cut among the scores above it and the fallback give the positive
    entries of torch.topk over the flattened batch: same values, same (row, latent) pairs,
    latents increasing within a row. A bound taken shallower than the cut (``oversample`` < 1)
    forces the fallback. A tenth of the rows are busy (3 to 10 times k kept); at offset -1 the
    batch's cut is positive, at -2 it is negative and only the positive scores are kept. 1000
    rows sample every third row (50: all of them)."""
    gen = torch.Generator().manual_seed(0)
    scores = torch.randn(batch, 64, generator=gen, dtype=torch.float64) + offset
    scores[::10] += 2.0 if offset == -1.0 else 1.5
    active, exact = batch_topk(scores, k=4, oversample=oversample)
    assert exact == fast
    values, flat = scores.flatten().topk(4 * batch)
    positive = values > 0
    assert (offset == -1.0) == bool(positive.all())
    expected = {(int(i) // 64, int(i) % 64) for i in flat[positive]}
    assert set(zip(active.rows().tolist(), active.indices.tolist(), strict=True)) == expected
    torch.testing.assert_close(active.values.sort().values, values[positive].sort().values)
    for row in range(batch):
        latents = active.indices[active.crow[row] : active.crow[row + 1]]
        assert torch.equal(latents, latents.sort().values)


def test_aux_loss_only_trains_dead_latents() -> None:
    sae = _sae(aux_k=5)
    x = torch.randn(32, 16)
    dead = torch.zeros(64, dtype=torch.bool)
    dead[::2] = True
    out = sae.train_loss(x, dead, 1.0)
    assert out.aux_loss > 0
    sae.zero_grad()
    out.aux_loss.backward()
    touched = sae.W_dec.grad.abs().sum(dim=1) > 0
    assert touched.any() and not (touched & ~dead).any()
    no_dead = sae.train_loss(x, torch.zeros_like(dead), 1.0)
    assert no_dead.aux_loss == 0 and torch.equal(no_dead.loss, no_dead.mse)


def test_parallel_gradient_removed_and_rows_renormalised() -> None:
    sae = _sae()
    sae.W_dec.grad = torch.randn_like(sae.W_dec)
    sae.remove_parallel_grad()
    parallel = (sae.W_dec.grad * sae.W_dec).sum(dim=1)
    torch.testing.assert_close(parallel, torch.zeros(64), atol=1e-5, rtol=0)
    with torch.no_grad():
        sae.W_dec.mul_(torch.rand(64, 1) + 0.5)
    sae.normalize_decoder()
    torch.testing.assert_close(sae.W_dec.norm(dim=1), torch.ones(64))


def test_normalisation_is_internal() -> None:
    """An SAE with input_scale s on x equals the unit-scale SAE on s*x, divided by s."""
    scaled, unit = _sae(scale=2.5), _sae(scale=1.0)
    x = torch.randn(16, 16)
    with torch.no_grad():
        torch.testing.assert_close(scaled(x), unit(2.5 * x) / 2.5)
        torch.testing.assert_close(scaled.encode(x), unit.encode(2.5 * x))


def test_save_load_round_trip(tmp_path) -> None:
    sae = _sae(scale=1.3)
    save_sae(sae, tmp_path, firing_frequency=torch.full((64,), 0.25), extra={"training_data": "x"})
    loaded = load_sae(tmp_path)
    x = torch.randn(20, 16)
    with torch.no_grad():
        assert torch.equal(loaded(x), sae(x))
    assert loaded.cfg == sae.cfg
    cfg = json.loads((tmp_path / "cfg.json").read_text())
    assert cfg["input_scale"] == 1.3 and cfg["training_data"] == "x" and "clipsae_version" in cfg
    from safetensors.torch import load_file

    assert set(load_file(tmp_path / "sae_weights.safetensors")) == {
        "W_enc",
        "b_enc",
        "W_dec",
        "b_dec",
    }
    sparsity = load_file(tmp_path / "sparsity.safetensors")
    torch.testing.assert_close(sparsity["sparsity"], torch.full((64,), -0.60206), atol=1e-5, rtol=0)


def test_config_json_round_trip_and_validation() -> None:
    cfg = TopKConfig(d_in=8, d_sae=32, k=4, input_scale=0.5)
    assert SAEConfig.from_json(cfg.to_json()) == cfg
    with pytest.raises(ValueError, match="k must be"):
        TopKConfig(d_in=8, d_sae=32, k=33)
    with pytest.raises(ValueError, match="unknown SAE arch 'nope'"):
        SAEConfig.from_dict({"arch": "nope", "d_in": 8, "d_sae": 32})
