"""Trainer quality and speed on real activations: ours against an independent dense TopK loop and
dictionary_learning's TopK and BatchTopK trainers, same rows, flags and process.

The rows come from ``bench/real_embeddings.py`` (all-MiniLM-L6-v2 over WordNet, 384-d). The last
``--val-rows`` rows are held out (rows of one text are adjacent, so the split is by text). Every
method is scored by the same function: dataset-level FVU ``sum ||x - x_hat||^2 / sum ||x - mean
x||^2``, L0 and the share of latents that never fire, all on the held-out rows. samples/s counts
training steps only (no scoring), and is compared with the dense reference measured in the same
process. Prints a Markdown table and writes ``bench/out/bench_train_real_{epochs}ep.json``.

    python bench/bench_train_real.py --epochs 2
    python bench/bench_train_real.py --methods topk --variant clip:decay_frac=0.2,grad_clip=1.0e-9

Methods: ``topk`` and ``batchtopk`` are ``clipsae.sae.train_sae`` with the flags below and every
other setting at its default (what ``clipsae train-sae`` gives a new user); ``dense`` is a plain
PyTorch TopK SAE written here (tied init, ``b_dec`` = data mean, MSE summed over dimensions,
Adam at constant ``lr``, decoder rows renormalised after each step); ``dl_topk`` and
``dl_batchtopk`` are dictionary_learning 0.1.0's trainers, whose own schedule needs steps set
for a run: warm-up 5% of the steps, linear decay over the last 20% (its demo's
``decay_start``), inference threshold tracked from the end of the warm-up. ``--variant
NAME:key=value,...`` adds our TopK with those overrides (``arch``, keys of its config or of
``TrainConfig``).
"""

from __future__ import annotations

import argparse
import json
import os
import re
import subprocess
import tempfile
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import numpy as np
import torch
import yaml
from torch import Tensor

from clipsae.sae import TrainConfig, load_sae, train_sae
from clipsae.sae.config import arch_config

Forward = Callable[[Tensor], tuple[Tensor, Tensor]]  # x -> (codes, x_hat)
OUT = Path(__file__).parent / "out"


@torch.no_grad()
def score(forward: Forward, val: np.ndarray, d_sae: int, batch_size: int = 4096) -> dict:
    """Held-out FVU (dataset-level, float64), mean L0 and the dead share, for any method."""
    sq_err, fired, l0 = 0.0, torch.zeros(d_sae, dtype=torch.bool), 0.0
    for start in range(0, len(val), batch_size):
        x = torch.from_numpy(val[start : start + batch_size])
        codes, x_hat = forward(x)
        sq_err += float((x.double() - x_hat.double()).pow(2).sum())
        active = codes > 0
        l0 += float(active.sum())
        fired |= active.any(dim=0)
    val64 = val.astype(np.float64)
    variance = float(((val64 - val64.mean(axis=0)) ** 2).sum())
    return {
        "fvu": sq_err / variance,
        "l0": l0 / len(val),
        "dead_pct": 100 * float((~fired).double().mean()),
    }


def batches(train: np.ndarray, batch_size: int, epochs: int, seed: int) -> Iterator[Tensor]:
    """Full shuffled batches, a new order each epoch (what every method here trains on)."""
    rng = np.random.default_rng(seed)
    for _ in range(epochs):
        order = rng.permutation(len(train))
        for i in range(len(train) // batch_size):
            yield torch.from_numpy(train[np.sort(order[i * batch_size : (i + 1) * batch_size])])


def timed(steps: Iterator[Tensor], step: Callable[[int, Tensor], None]) -> float:
    """Seconds spent in ``step`` over all batches (batch assembly excluded, as in ours)."""
    seconds = 0.0
    for i, x in enumerate(steps):
        started = time.perf_counter()
        step(i, x)
        seconds += time.perf_counter() - started
    return seconds


def run_ours(arch: str, overrides: dict, train: np.ndarray, args: argparse.Namespace) -> dict:
    """Our trainer with only the issue's flags set (plus ``overrides``, each given to the
    architecture's config or to ``TrainConfig``, whichever has that key)."""
    config = arch_config(arch)
    model = {key: value for key, value in overrides.items() if key in config.field_names()}
    recipe = {key: value for key, value in overrides.items() if key not in model}
    cfg = config(d_in=train.shape[1], d_sae=args.d_sae, k=args.k, **model)
    tcfg = TrainConfig(
        lr=args.lr, batch_size=args.batch_size, epochs=args.epochs, seed=args.seed, **recipe
    )
    with tempfile.TemporaryDirectory() as out:
        summary = train_sae(train, cfg, tcfg, Path(out))
        sae = load_sae(Path(out))
    sae.eval()
    return {"forward": sae.forward_with_codes, "train_seconds": summary["train_seconds"]}


def run_dense(train: np.ndarray, args: argparse.Namespace) -> dict:
    """A plain dense TopK SAE: the reference, sharing no code with our trainer."""
    torch.manual_seed(args.seed)
    d_in = train.shape[1]
    w_dec = torch.randn(args.d_sae, d_in)
    w_dec /= w_dec.norm(dim=1, keepdim=True)
    w_enc = torch.nn.Parameter(w_dec.t().clone())
    w_dec = torch.nn.Parameter(w_dec)
    b_enc = torch.nn.Parameter(torch.zeros(args.d_sae))
    b_dec = torch.nn.Parameter(torch.from_numpy(train.mean(axis=0)))
    opt = torch.optim.Adam([w_enc, b_enc, w_dec, b_dec], lr=args.lr)

    def forward(x: Tensor) -> tuple[Tensor, Tensor]:
        pre = (x - b_dec) @ w_enc + b_enc
        values, indices = pre.topk(args.k, dim=1)
        codes = torch.zeros_like(pre).scatter(1, indices, values.relu())
        return codes, codes @ w_dec + b_dec

    def step(_: int, x: Tensor) -> None:
        loss = (forward(x)[1] - x).pow(2).sum(dim=1).mean()
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        with torch.no_grad():
            w_dec.div_(w_dec.norm(dim=1, keepdim=True))

    seconds = timed(batches(train, args.batch_size, args.epochs, args.seed), step)
    return {"forward": forward, "train_seconds": seconds}


def run_dictionary_learning(arch: str, train: np.ndarray, args: argparse.Namespace) -> dict:
    """dictionary_learning's own trainer classes, driven by their ``update(step, x)``."""
    from dictionary_learning.trainers.batch_top_k import BatchTopKTrainer
    from dictionary_learning.trainers.top_k import TopKTrainer

    steps = len(train) // args.batch_size * args.epochs
    warmup = max(1, steps // 20)
    trainer = (TopKTrainer if arch == "dl_topk" else BatchTopKTrainer)(
        steps=steps,
        activation_dim=train.shape[1],
        dict_size=args.d_sae,
        k=args.k,
        layer=0,
        lm_name="all-MiniLM-L6-v2",
        lr=args.lr,
        warmup_steps=warmup,
        decay_start=int(0.8 * steps),
        threshold_start_step=warmup,
        seed=args.seed,
        device="cpu",
    )
    seconds = timed(batches(train, args.batch_size, args.epochs, args.seed), trainer.update)
    ae = trainer.ae.eval()

    def forward(x: Tensor) -> tuple[Tensor, Tensor]:
        x_hat, codes = ae(x, output_features=True)
        return codes, x_hat

    return {"forward": forward, "train_seconds": seconds}


def parse_variant(text: str) -> tuple[str, dict]:
    """``NAME:key=value,key=value`` -> (NAME, overrides), values parsed as YAML (a list such as
    ``adam_betas=[0.9,0.99]`` keeps its commas)."""
    name, _, body = text.partition(":")
    pairs = (item.split("=", 1) for item in re.split(r",(?![^\[]*\])", body) if item)
    return name, {key: yaml.safe_load(value) for key, value in pairs}


def load_text() -> str:
    return subprocess.run(["uptime"], capture_output=True, text=True).stdout.strip()


def load_average() -> float:
    """This machine's 1-minute load average: the cores are shared, so each method records it."""
    return os.getloadavg()[0]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", type=Path, default=OUT / "wordnet_minilm_token.npy")
    parser.add_argument("--rows", type=int, help="first N rows only (after the held-out ones)")
    parser.add_argument("--val-rows", type=int, default=16384)
    parser.add_argument("--k", type=int, default=32)
    parser.add_argument("--d-sae", type=int, default=3072)
    parser.add_argument("--batch-size", type=int, default=4096)
    parser.add_argument("--lr", type=float, default=4e-4)
    parser.add_argument("--epochs", type=int, default=2)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument(
        "--methods", nargs="+", default=["dense", "topk", "batchtopk", "dl_topk", "dl_batchtopk"]
    )
    parser.add_argument("--variant", action="append", default=[], help="NAME:key=value,...")
    parser.add_argument("--out", type=Path)
    args = parser.parse_args()
    data = np.load(args.data).astype(np.float32)
    train, val = data[: -args.val_rows][: args.rows], data[-args.val_rows :]
    runners: dict[str, Callable[[], dict]] = {
        "dense": lambda: run_dense(train, args),
        "topk": lambda: run_ours("topk", {}, train, args),
        "batchtopk": lambda: run_ours("batchtopk", {}, train, args),
        "dl_topk": lambda: run_dictionary_learning("dl_topk", train, args),
        "dl_batchtopk": lambda: run_dictionary_learning("dl_batchtopk", train, args),
    }
    for text in args.variant:
        name, overrides = parse_variant(text)
        arch = overrides.pop("arch", "topk")
        runners[name] = lambda a=arch, o=overrides: run_ours(a, o, train, args)
        args.methods += [] if name in args.methods else [name]
    steps = len(train) // args.batch_size * args.epochs
    report = {
        "load_before": load_text(),
        "threads": torch.get_num_threads(),
        "cpus": os.cpu_count(),
        "train_rows": len(train),
        "steps": steps,
        **{k: str(v) if isinstance(v, Path) else v for k, v in vars(args).items()},
        "results": {},
    }
    for method in args.methods:
        load = load_average()
        run = runners[method]()
        result = score(run["forward"], val, args.d_sae)
        result["samples_per_second"] = steps * args.batch_size / run["train_seconds"]
        result["load_average"] = (load + load_average()) / 2
        report["results"][method] = result
        print(method, json.dumps(result), flush=True)
    report["load_after"] = load_text()
    dense = report["results"].get("dense")
    out = args.out or OUT / f"bench_train_real_{args.epochs}ep.json"
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(report, indent=2))
    print(f"{len(train)} training rows, {steps} steps; {report['load_before']}")
    print("| method | FVU | L0 | dead % | samples/s | vs dense | load |")
    print("|---|---|---|---|---|---|---|")
    for method, r in report["results"].items():
        ratio = r["samples_per_second"] / dense["samples_per_second"] if dense else float("nan")
        print(
            f"| {method} | {r['fvu']:.4f} | {r['l0']:.1f} | {r['dead_pct']:.1f} | "
            f"{r['samples_per_second']:.0f} | {ratio:.2f}x | {r['load_average']:.1f} |"
        )


if __name__ == "__main__":
    main()
