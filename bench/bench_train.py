"""Training throughput of each SAE kind against a plain dense PyTorch SAE of the same maths.

For every kind (TopK, BatchTopK, both Matryoshkas, ReLU + L1) ours and its reference go through
the same ``train_sae`` (same data, hyper-parameters, process and threads), one after the other.
Each reference is registered as architecture ``<kind>_dense`` and differs only in computing the
codes, the decoder and every backward pass densely with autograd, the way a straightforward
PyTorch SAE does; it is scored through its own dense forward. AuxK is left out of the references:
no latent can be dead within a run this short (``dead_steps_threshold`` is 256 steps), so ours
never computes it either. BatchTopK's selection logs each batch where its sampled bound missed
the cut (the slower exact fallback, ``clipsae.sae.ops.batch_topk``); their count over training
and calibration is reported. With ``--repeats`` each SAE is trained that many times, ours and
its reference alternating which goes first, and the fastest run of each counts: on a machine
shared with other jobs that is the run least slowed by them. Prints a Markdown table and writes
``bench/out/bench_train.json``.

    python bench/bench_train.py [--d-in 384 --d-sae 3072 --k 32 --batch-size 4096 --steps 12]
        [--kinds topk batchtopk matryoshka_k matryoshka_prefix relu] [--repeats 1]
"""

from __future__ import annotations

import argparse
import json
import logging
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import ClassVar

import numpy as np
import torch
from torch import Tensor

from clipsae.sae import (
    BatchTopKSAE,
    MatryoshkaKSAE,
    MatryoshkaPrefixSAE,
    ReLUSAE,
    TopKSAE,
    TrainConfig,
    TrainLoss,
    load_sae,
    register,
    train_sae,
)
from clipsae.sae.config import (
    BatchTopKConfig,
    MatryoshkaKConfig,
    MatryoshkaPrefixConfig,
    ReLUConfig,
    SAEConfig,
    TopKConfig,
)
from clipsae.sae.metrics import reconstruction_metrics


def _dense_config(config: type[SAEConfig]) -> type[SAEConfig]:
    """``config`` registered again as ``<arch>_dense``: the same settings, built by the plain
    reference module registered for that name below."""
    namespace = {"arch": f"{config.arch}_dense", "__annotations__": {"arch": ClassVar[str]}}
    return dataclass(frozen=True, kw_only=True)(
        type(f"Dense{config.__name__}", (config,), namespace)
    )


DenseTopKConfig = _dense_config(TopKConfig)
DenseBatchTopKConfig = _dense_config(BatchTopKConfig)
DenseMatryoshkaKConfig = _dense_config(MatryoshkaKConfig)
DenseMatryoshkaPrefixConfig = _dense_config(MatryoshkaPrefixConfig)
DenseReLUConfig = _dense_config(ReLUConfig)


def _mse(sae: TopKSAE, target: Tensor, codes: Tensor) -> Tensor:
    return (target - torch.addmm(sae.b_dec, codes, sae.W_dec)).pow(2).mean()


def _loss(loss: Tensor, mse: Tensor, codes: Tensor) -> TrainLoss:
    active = codes.detach() > 0
    return TrainLoss(loss, mse, mse.new_zeros(()), active.sum(1).float().mean(), active.sum(0))


class _DenseForward:
    """Scores a reference through its own dense codes and decoder."""

    def forward(self, x: Tensor) -> Tensor:
        return self.forward_with_codes(x)[1]

    def forward_with_codes(self, x: Tensor) -> tuple[Tensor, Tensor]:
        with torch.no_grad():
            codes = self._infer_codes(x * self.scale - self.b_dec)
        return codes, self.decode(codes)


@register(DenseTopKConfig)
class DenseTopKSAE(_DenseForward, TopKSAE):
    """Top-k on dense codes, dense decoder matmul, autograd for everything."""

    def _dense_codes(self, centred: Tensor) -> Tensor:
        pre = torch.addmm(self.b_enc, centred, self.W_enc)
        values, indices = pre.topk(self.k, dim=1)
        return torch.zeros_like(pre).scatter(1, indices, values.relu())

    _infer_codes = _dense_codes

    def train_loss(self, x: Tensor, dead: Tensor, progress: float) -> TrainLoss:
        target = x * self.scale
        codes = self._dense_codes(target - self.b_dec)
        mse = _mse(self, target, codes)
        return _loss(mse, mse, codes)


@register(DenseBatchTopKConfig)
class DenseBatchTopKSAE(_DenseForward, BatchTopKSAE):
    """The k·B largest ReLU pre-activations of the flattened batch (dictionary_learning's way),
    the threshold tracked as ours does; dense decoder, autograd for everything."""

    def _dense_codes(self, centred: Tensor) -> Tensor:
        post = torch.addmm(self.b_enc, centred, self.W_enc).relu()
        values, indices = post.flatten().topk(self.k * len(post))
        kept = values.detach()[values.detach() > 0]
        if len(kept):
            self._update_threshold(float(kept[-1]), self.cfg.threshold_momentum)
        return torch.zeros_like(post).flatten().scatter(0, indices, values).view_as(post)

    def _infer_codes(self, centred: Tensor) -> Tensor:
        pre = torch.addmm(self.b_enc, centred, self.W_enc)
        return pre.relu() * (pre >= self.threshold)

    def train_loss(self, x: Tensor, dead: Tensor, progress: float) -> TrainLoss:
        target = x * self.scale
        codes = self._dense_codes(target - self.b_dec)
        mse = _mse(self, target, codes)
        return _loss(mse, mse, codes)


@register(DenseMatryoshkaKConfig)
class DenseMatryoshkaKSAE(_DenseForward, MatryoshkaKSAE):
    """Top-max(k_list) in decreasing order; the top k_i of them decoded densely for every k_i."""

    def _infer_codes(self, centred: Tensor) -> Tensor:
        pre = torch.addmm(self.b_enc, centred, self.W_enc)
        values, indices = pre.topk(self.k, dim=1)
        return torch.zeros_like(pre).scatter(1, indices, values.relu())

    def train_loss(self, x: Tensor, dead: Tensor, progress: float) -> TrainLoss:
        target = x * self.scale
        pre = torch.addmm(self.b_enc, target - self.b_dec, self.W_enc)
        values, indices = pre.topk(self.k_list[-1], dim=1)
        loss = pre.new_zeros(())
        for weight, k in zip(self.level_weights(), self.k_list, strict=True):
            codes = torch.zeros_like(pre).scatter(1, indices[:, :k], values[:, :k].relu())
            mse = _mse(self, target, codes)
            loss = loss + weight * mse
        return _loss(loss, mse, codes)


@register(DenseMatryoshkaPrefixConfig)
class DenseMatryoshkaPrefixSAE(DenseBatchTopKSAE, MatryoshkaPrefixSAE):
    """BatchTopK codes as ``batchtopk_dense``; each prefix decoded by a dense matmul of its own
    columns and rows, the prefix MSEs summed."""

    def train_loss(self, x: Tensor, dead: Tensor, progress: float) -> TrainLoss:
        target = x * self.scale
        codes = self._dense_codes(target - self.b_dec)
        loss = codes.new_zeros(())
        for m in self.prefix_sizes:
            recon = torch.addmm(self.b_dec, codes[:, :m], self.W_dec[:m])
            mse = (target - recon).pow(2).mean()
            loss = loss + mse
        return _loss(loss, mse, codes)


@register(DenseReLUConfig)
class DenseReLUSAE(_DenseForward, ReLUSAE):
    """ReLU codes, dense decoder, the L1 of the codes weighted by decoder row norms."""

    def _infer_codes(self, centred: Tensor) -> Tensor:
        return torch.addmm(self.b_enc, centred, self.W_enc).relu()

    def train_loss(self, x: Tensor, dead: Tensor, progress: float) -> TrainLoss:
        target = x * self.scale
        codes = self._infer_codes(target - self.b_dec)
        mse = _mse(self, target, codes)
        l1 = (codes * self.W_dec.norm(dim=1)).sum(dim=1).mean()
        return _loss(mse + self.cfg.l1_at(progress) * l1, mse, codes)


# kind -> (ours, the dense reference)
KINDS: dict[str, tuple[type[SAEConfig], type[SAEConfig]]] = {
    "topk": (TopKConfig, DenseTopKConfig),
    "batchtopk": (BatchTopKConfig, DenseBatchTopKConfig),
    "matryoshka_k": (MatryoshkaKConfig, DenseMatryoshkaKConfig),
    "matryoshka_prefix": (MatryoshkaPrefixConfig, DenseMatryoshkaPrefixConfig),
    "relu": (ReLUConfig, DenseReLUConfig),
}


def model_keys(kind: str, args: argparse.Namespace) -> dict:
    """The issue's flags for each kind: Matryoshka-K nests k/4, k/2 and k; Matryoshka over
    prefixes nests d_sae/8, /4 and /2; ReLU keeps its default L1 coefficient."""
    if kind == "relu":
        return {}
    if kind == "matryoshka_k":
        return {"k_list": (args.k // 4, args.k // 2, args.k)}
    if kind == "matryoshka_prefix":
        return {"k": args.k, "prefix_sizes": tuple(args.d_sae // f for f in (8, 4, 2))}
    return {"k": args.k}


def synthetic(n: int, d: int, seed: int) -> np.ndarray:
    """Sparse non-negative combinations of 4 * d random unit directions plus an offset, like CLIP
    activations in having a large mean and a sparse dictionary structure."""
    rng = np.random.default_rng(seed)
    dirs = rng.normal(size=(4 * d, d)).astype(np.float32)
    dirs /= np.linalg.norm(dirs, axis=1, keepdims=True)
    codes = np.zeros((n, 4 * d), dtype=np.float32)
    picks = np.argsort(rng.random((n, 4 * d), dtype=np.float32), axis=1)[:, :16]
    np.put_along_axis(codes, picks, rng.exponential(size=(n, 16)).astype(np.float32), axis=1)
    return codes @ dirs + rng.normal(size=d).astype(np.float32)


def matmul_gflops(batch: int, d_in: int, d_sae: int, repeats: int = 5) -> float:
    """This machine's dense (batch, d_in) @ (d_in, d_sae) throughput, the encoder's shape."""
    a, b = torch.randn(batch, d_in), torch.randn(d_in, d_sae)
    a @ b
    start = time.perf_counter()
    for _ in range(repeats):
        a @ b
    return 2 * batch * d_in * d_sae * repeats / (time.perf_counter() - start) / 1e9


class _Count(logging.Handler):
    """Counts the records that reach it: BatchTopK's selection fallbacks."""

    def __init__(self) -> None:
        super().__init__(logging.DEBUG)
        self.count = 0

    def emit(self, record: logging.LogRecord) -> None:
        self.count += 1


def run(config: type[SAEConfig], train: np.ndarray, val: np.ndarray, args, keys: dict) -> dict:
    cfg = config(d_in=args.d_in, d_sae=args.d_sae, **keys)
    tcfg = TrainConfig(
        lr=args.lr,
        batch_size=args.batch_size,
        epochs=1,
        warmup_frac=2 / args.steps,
        val_every=10**9,
        checkpoint_every=10**9,
        seed=0,
    )
    fallbacks = _Count()
    selection = logging.getLogger("clipsae.sae.topk")
    selection.addHandler(fallbacks)
    selection.setLevel(logging.DEBUG)
    try:
        with tempfile.TemporaryDirectory() as out:
            summary = train_sae(train, cfg, tcfg, Path(out))
            sae = load_sae(Path(out))
    finally:
        selection.removeHandler(fallbacks)
    batches = (val[i : i + args.batch_size] for i in range(0, len(val), args.batch_size))
    metrics = reconstruction_metrics(sae, batches, dense=False)
    return {
        "samples_per_second": summary["samples_per_second"],
        "train_seconds": summary["train_seconds"],
        "fvu": metrics["fvu"],
        "l0": metrics["l0"],
        "selection_fallbacks": fallbacks.count,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--d-in", type=int, default=384)
    parser.add_argument("--d-sae", type=int, default=3072)
    parser.add_argument("--k", type=int, default=32)
    parser.add_argument("--batch-size", type=int, default=4096)
    parser.add_argument("--steps", type=int, default=12)
    parser.add_argument("--lr", type=float, default=4e-4)
    parser.add_argument("--kinds", nargs="+", choices=sorted(KINDS), default=list(KINDS))
    parser.add_argument(
        "--repeats",
        type=int,
        default=1,
        help="runs of each SAE, ours and the reference in alternating order; the fastest counts",
    )
    parser.add_argument(
        "--out", type=Path, default=Path(__file__).parent / "out" / "bench_train.json"
    )
    args = parser.parse_args()
    data = synthetic(args.batch_size * args.steps + 8192, args.d_in, seed=0)
    train, val = data[: args.batch_size * args.steps], data[args.batch_size * args.steps :]
    peak = matmul_gflops(args.batch_size, args.d_in, args.d_sae)
    results = {}
    for kind in args.kinds:
        keys = model_keys(kind, args)
        runs: dict[type[SAEConfig], list[dict]] = {config: [] for config in KINDS[kind]}
        for repeat in range(args.repeats):
            for config in KINDS[kind][:: 1 if repeat % 2 == 0 else -1]:
                runs[config].append(run(config, train, val, args, keys))
        ours, dense = (max(r, key=lambda x: x["samples_per_second"]) for r in runs.values())
        results[kind] = {
            "ours": ours,
            "dense": dense,
            "speedup": ours["samples_per_second"] / dense["samples_per_second"],
            "fvu_relative_diff": (ours["fvu"] - dense["fvu"]) / dense["fvu"],
        }
    report = {
        "threads": torch.get_num_threads(),
        "matmul_gflops_per_second": peak,
        **vars(args) | {"out": str(args.out)},
        "results": results,
    }
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(report, indent=2))
    print(
        f"torch matmul ({args.batch_size}x{args.d_in} @ {args.d_in}x{args.d_sae}): "
        f"{peak:.1f} GFLOP/s, {report['threads']} threads"
    )
    print(
        "| SAE | ours samples/s | dense samples/s | speed-up | ours FVU | dense FVU "
        "| FVU rel. diff | ours L0 | fallbacks |\n|---|---|---|---|---|---|---|---|---|"
    )
    for kind, r in results.items():
        ours, dense = r["ours"], r["dense"]
        print(
            f"| {kind} | {ours['samples_per_second']:.0f} | {dense['samples_per_second']:.0f} | "
            f"{r['speedup']:.2f}x | {ours['fvu']:.4f} | {dense['fvu']:.4f} | "
            f"{r['fvu_relative_diff']:+.2%} | {ours['l0']:.1f} | {ours['selection_fallbacks']} |"
        )


if __name__ == "__main__":
    main()
