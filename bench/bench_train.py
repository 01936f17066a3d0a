"""Training throughput: our sparse TopK SAE against a plain dense PyTorch TopK SAE.

Both go through the same ``train_sae`` (same data, hyper-parameters, process and threads); the
baseline is registered as architecture ``topk_dense`` and differs only in computing the decoder
and every backward pass densely, the way a straightforward PyTorch TopK SAE does. Prints a
Markdown table and writes ``bench/out/bench_train.json``.

    python bench/bench_train.py [--d-in 512 --d-sae 8192 --k 32 --batch-size 4096 --steps 12]
"""

from __future__ import annotations

import argparse
import json
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import ClassVar

import numpy as np
import torch
from torch import Tensor

from clipsae.sae import (
    TopKSAE,
    TrainConfig,
    TrainLoss,
    load_sae,
    register,
    train_sae,
)
from clipsae.sae.config import TopKConfig
from clipsae.sae.metrics import reconstruction_metrics


@dataclass(frozen=True, kw_only=True)
class DenseTopKConfig(TopKConfig):
    arch: ClassVar[str] = "topk_dense"


@register(DenseTopKConfig)
class DenseTopKSAE(TopKSAE):
    """The baseline: top-k on dense codes, dense decoder matmul, autograd for everything."""

    def _dense_codes(self, centred: Tensor) -> Tensor:
        pre = torch.addmm(self.b_enc, centred, self.W_enc)
        values, indices = pre.topk(self.k, dim=1)
        return torch.zeros_like(pre).scatter(1, indices, values.relu())

    def forward(self, x: Tensor) -> Tensor:
        return self.forward_with_codes(x)[1]

    def forward_with_codes(self, x: Tensor) -> tuple[Tensor, Tensor]:
        codes = self._dense_codes(x * self.scale - self.b_dec)
        return codes, self.decode(codes)

    def train_loss(self, x: Tensor, dead: Tensor, progress: float) -> TrainLoss:
        target = x * self.scale
        codes = self._dense_codes(target - self.b_dec)
        mse = (target - torch.addmm(self.b_dec, codes, self.W_dec)).pow(2).mean()
        active = codes > 0
        zero = mse.new_zeros(())
        return TrainLoss(mse, mse, zero, active.sum(1).float().mean(), active.sum(0))


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


def step_flops(arch: str, batch: int, d_in: int, d_sae: int, k: int) -> float:
    """Multiply-adds x2 per training step. Dense: encoder forward, decoder forward, the decoder's
    two gradients, the encoder's weight and input gradients (6 dense products). Ours: the encoder
    forward dense, then 5 products over the k active latents only."""
    dense = 2 * batch * d_in * d_sae
    return 6 * dense if arch == "topk_dense" else dense + 5 * 2 * batch * k * d_in


def run(arch: str, train: np.ndarray, val: np.ndarray, args: argparse.Namespace) -> dict:
    config = DenseTopKConfig if arch == "topk_dense" else TopKConfig
    cfg = config(d_in=args.d_in, d_sae=args.d_sae, k=args.k)
    tcfg = TrainConfig(
        lr=args.lr,
        batch_size=args.batch_size,
        epochs=1,
        warmup_frac=2 / args.steps,
        val_every=10**9,
        checkpoint_every=10**9,
        seed=0,
    )
    with tempfile.TemporaryDirectory() as out:
        summary = train_sae(train, cfg, tcfg, Path(out))
        sae = load_sae(Path(out))
    batches = (val[i : i + args.batch_size] for i in range(0, len(val), args.batch_size))
    metrics = reconstruction_metrics(sae, batches, dense=False)
    flops = step_flops(arch, args.batch_size, args.d_in, args.d_sae, args.k) * summary["steps"]
    return {
        "samples_per_second": summary["samples_per_second"],
        "train_seconds": summary["train_seconds"],
        "fvu": metrics["fvu"],
        "gflops_per_second": flops / summary["train_seconds"] / 1e9,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--d-in", type=int, default=512)
    parser.add_argument("--d-sae", type=int, default=8192)
    parser.add_argument("--k", type=int, default=32)
    parser.add_argument("--batch-size", type=int, default=4096)
    parser.add_argument("--steps", type=int, default=12)
    parser.add_argument("--lr", type=float, default=4e-4)
    parser.add_argument(
        "--out", type=Path, default=Path(__file__).parent / "out" / "bench_train.json"
    )
    args = parser.parse_args()
    data = synthetic(args.batch_size * args.steps + 8192, args.d_in, seed=0)
    train, val = data[: args.batch_size * args.steps], data[args.batch_size * args.steps :]
    peak = matmul_gflops(args.batch_size, args.d_in, args.d_sae)
    results = {arch: run(arch, train, val, args) for arch in ("topk", "topk_dense")}
    ours, dense = results["topk"], results["topk_dense"]
    report = {
        "threads": torch.get_num_threads(),
        "matmul_gflops_per_second": peak,
        "speedup": ours["samples_per_second"] / dense["samples_per_second"],
        "fvu_relative_diff": (ours["fvu"] - dense["fvu"]) / dense["fvu"],
        **vars(args) | {"out": str(args.out)},
        "results": results,
    }
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(report, indent=2))
    print(
        f"torch matmul ({args.batch_size}x{args.d_in} @ {args.d_in}x{args.d_sae}): "
        f"{peak:.1f} GFLOP/s, {report['threads']} threads"
    )
    print("| SAE | samples/s | FVU | GFLOP/s | % of matmul |\n|---|---|---|---|---|")
    for arch, r in results.items():
        print(
            f"| {arch} | {r['samples_per_second']:.0f} | {r['fvu']:.4f} | "
            f"{r['gflops_per_second']:.1f} | {100 * r['gflops_per_second'] / peak:.0f}% |"
        )
    print(
        f"speed-up {report['speedup']:.2f}x, "
        f"FVU relative difference {report['fvu_relative_diff']:+.2%}"
    )


if __name__ == "__main__":
    main()
