"""Dead latents of a TopK + AuxK SAE at expansion 8: how they depend on the data's dimensionality
and on the dictionary initialisation.

Trains the demo's SAE as ``config/config.yaml`` defines it (TopK, k 8, expansion 8, AuxK and
resampling), once per ``dict_init``, on Gaussians that fill r of 128 dimensions, a control whose
effective dimension is known, and on the demo's activations when they exist. A latent is dead if it
fires on none of the 1000 held-out rows. Prints a Markdown table and writes
``bench/out/bench_dead_latents.json``.

    python bench/bench_dead_latents.py [--activations results/activations/tiny/shapes]
        [--config config/config.yaml --sae topk8-x8]
"""

from __future__ import annotations

import argparse
import json
import tempfile
from pathlib import Path

import numpy as np
import torch

from clipsae.config import load_config
from clipsae.experiment import sae_configs
from clipsae.metrics import reconstruction_metrics
from clipsae.sae import load_sae, train_sae
from clipsae.shards import load_activations


def gaussian(rank: int, d: int = 128, n: int = 5000, seed: int = 0) -> np.ndarray:
    """Isotropic Gaussian on a random ``rank``-dimensional subspace, plus faint full-rank noise."""
    rng = np.random.default_rng(seed)
    basis = np.linalg.qr(rng.normal(size=(d, rank)))[0]
    return (rng.normal(size=(n, rank)) @ basis.T + 0.01 * rng.normal(size=(n, d))).astype(
        np.float32
    )


def participation_ratio(x: np.ndarray) -> float:
    """(sum of variances)^2 / sum of squared variances: the number of equally strong directions
    that would give the same spread."""
    var = np.linalg.svd(x - x.mean(axis=0), compute_uv=False) ** 2
    return float(var.sum() ** 2 / (var**2).sum())


def measure(train: np.ndarray, held_out: np.ndarray, entry: dict) -> dict[str, float]:
    cfg, tcfg = sae_configs(entry, train.shape[1])
    with tempfile.TemporaryDirectory() as out:
        train_sae(train, cfg, tcfg, Path(out), device="cpu")
        sae = load_sae(Path(out))
    batches = (held_out[i : i + 512] for i in range(0, len(held_out), 512))
    metrics = reconstruction_metrics(sae, batches, dense=False)
    return {"fvu": metrics["fvu"], "dead_frac": metrics["dead_frac"]}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--activations", type=Path, default=Path("results/activations/tiny/shapes"))
    parser.add_argument("--config", type=Path, default=Path("config/config.yaml"))
    parser.add_argument("--sae", default="topk8-x8", help="the entry of `saes` to train")
    parser.add_argument("--out", type=Path, default=Path("bench/out/bench_dead_latents.json"))
    args = parser.parse_args()
    entry = load_config(args.config)["saes"][args.sae]
    torch.manual_seed(0)

    datasets = {f"Gaussian, rank {r}": np.split(gaussian(r), [4000]) for r in (16, 32, 64)}
    for layer in ("final", "block2"):
        train, test = (args.activations / split / layer for split in ("train", "test"))
        if train.exists() and test.exists():
            datasets[f"demo shapes, {layer}"] = [load_activations(train), load_activations(test)]

    rows = []
    print("| data | participation ratio | dict_init | held-out FVU | dead (held-out) |")
    print("|---|---|---|---|---|")
    for name, (train, held_out) in datasets.items():
        ratio = participation_ratio(train)
        for dict_init in ("random", "data"):
            result = {"data": name, "participation_ratio": ratio, "dict_init": dict_init}
            result |= measure(train, held_out, {**entry, "dict_init": dict_init})
            rows.append(result)
            print(
                f"| {name} | {ratio:.1f} | {dict_init} | {result['fvu']:.3f} "
                f"| {result['dead_frac']:.1%} |",
                flush=True,
            )
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(rows, indent=2))


if __name__ == "__main__":
    main()
