"""Checks of the ground-truth detectors on the demo's activations (bench/README.md, "Ground truth
on the demo").

1. ``--sae DIR --values color=red color=blue``: each value's detector found by hand (numpy: every
   latent, every distinct threshold on the train split, the best F1), then scored on the test
   split, to compare with the step's ``ground_truth.parquet``; and how much of the value the
   latents that fire mostly on it cover.
2. The ceiling for single directions: class-mean and one-vs-rest logistic-regression directions
   (one per value, fitted on the train split) through the step's own ``detectors``.
3. How additive the embedding is: test variance explained by linear models of the factors'
   one-hots, and by colour x background cell means.

    python bench/bench_ground_truth_checks.py --results results --dataset colors \
        [--sae results/sae/tiny/final/colors/topk8-x8 --values color=red color=blue]
"""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np
import polars as pl
import torch
from sklearn.linear_model import LogisticRegression

from clipsae.activations.shards import batches_of, load_activations
from clipsae.interpret.ground_truth import RECOVERED_F1, detectors, projection_encoder
from clipsae.sae import load_sae
from clipsae.steps.common import row_attributes
from clipsae.steps.ground_truth import _split_factors


def best_detector(train: np.ndarray, truth: np.ndarray) -> tuple[float, int, float]:
    """(train F1, latent, threshold) of the best ``activation >= threshold`` over all latents
    and every distinct activation value as threshold."""
    best = (-1.0, -1, 0.0)
    for j in range(train.shape[1]):
        a = train[:, j]
        order = np.argsort(-a, kind="stable")
        ranked = a[order]
        tp = np.cumsum(truth[order])
        predicted = np.arange(1, len(a) + 1)
        last_of_ties = np.r_[ranked[1:] != ranked[:-1], True]
        f1 = np.where(last_of_ties, 2 * tp / (predicted + truth.sum()), 0.0)
        i = int(f1.argmax())
        if f1[i] > best[0]:
            best = (float(f1[i]), j, float(ranked[i]))
    return best


def hand_check(sae_dir: Path, acts: Path, index_dir: Path, layer: str, values: list[str]) -> None:
    sae = load_sae(sae_dir, "cpu").eval()
    codes, rows = {}, {}
    for split in ("train", "test"):
        x = load_activations(acts / split / layer)
        with torch.no_grad():
            codes[split] = sae.encode(torch.as_tensor(x)).numpy()
        rows[split] = row_attributes(acts / split / layer, index_dir)
    for item in values:
        factor, value = item.split("=", 1)
        y_train = (rows["train"][factor] == value).to_numpy()
        y_test = (rows["test"][factor] == value).to_numpy()
        f1_train, latent, threshold = best_detector(codes["train"], y_train)
        fired = codes["test"][:, latent] >= threshold
        tp = int((fired & y_test).sum())
        precision, recall = tp / max(int(fired.sum()), 1), tp / int(y_test.sum())
        f1 = 2 * precision * recall / (precision + recall) if tp else 0.0
        print(
            f"{item}: latent {latent}, threshold {threshold:.4g}, train F1 {f1_train:.3f}; test "
            f"precision {precision:.3f}, recall {recall:.3f}, F1 {f1:.3f} (n_test {y_test.sum()})"
        )
        active = codes["test"] > 0
        n_active = active.sum(0)
        share = (active & y_test[:, None]).sum(0) / np.maximum(n_active, 1)
        mostly = np.where((share >= 0.8) & (n_active >= 5))[0]
        cover = active[y_test][:, mostly].any(1).mean() if len(mostly) else 0.0
        print(
            f"  {len(mostly)} latents fire >= 80% on {value} images; together they fire on "
            f"{cover:.2f} of them"
        )


def ceiling(acts: Path, index_dir: Path, layer: str) -> None:
    train_dir, test_dir = acts / "train" / layer, acts / "test" / layer
    x_train, x_test = load_activations(train_dir), load_activations(test_dir)
    f_train, f_test = _split_factors(train_dir, test_dir, index_dir, None)
    mean = x_train.mean(0)
    y = f_train.indicator(0, len(x_train)).numpy().astype(bool)
    directions = {
        "class mean": np.stack([x_train[y[:, v]].mean(0) - mean for v in range(y.shape[1])]),
        "logistic regression": np.stack(
            [
                LogisticRegression(max_iter=2000).fit(x_train - mean, y[:, v]).coef_[0]
                for v in range(y.shape[1])
            ]
        ),
    }
    for name, d in directions.items():
        d = torch.as_tensor(d / np.linalg.norm(d, axis=1, keepdims=True), dtype=torch.float32)
        encode = projection_encoder(d, torch.as_tensor(mean))
        table, _ = detectors(
            encode, lambda: batches_of(x_train), lambda: batches_of(x_test), f_train, f_test
        )
        summary = table.group_by("factor", maintain_order=True).agg(
            recovered=(pl.col("f1") >= RECOVERED_F1).sum(),
            of=pl.len(),
            mean_f1=pl.col("f1").mean().round(3),
        )
        print(f"{name} directions:", summary.to_dicts())


def additivity(acts: Path, index_dir: Path, layer: str) -> None:
    data = {}
    for split in ("train", "test"):
        x = load_activations(acts / split / layer).astype(np.float64)
        data[split] = (x, row_attributes(acts / split / layer, index_dir))
    (x_train, r_train), (x_test, r_test) = data["train"], data["test"]
    mean = x_train.mean(0)
    total = ((x_test - mean) ** 2).sum()

    def onehot(rows: pl.DataFrame, factors: list[str]) -> np.ndarray:
        cols = [np.ones(len(rows))]
        for f in factors:
            for v in sorted(r_train[f].unique().to_list()):
                cols.append((rows[f] == v).to_numpy().astype(float))
        return np.stack(cols, 1)

    for factors in (["color"], ["shape"], ["background"], ["color", "background"],
                    ["color", "shape", "background"]):  # fmt: skip
        w = np.linalg.lstsq(onehot(r_train, factors), x_train, rcond=None)[0]
        residual = ((x_test - onehot(r_test, factors) @ w) ** 2).sum()
        print(f"{' + '.join(factors)}: {1 - residual / total:.3f} of the test variance")
    keys_train = (r_train["color"] + "|" + r_train["background"]).to_numpy()
    keys_test = (r_test["color"] + "|" + r_test["background"]).to_numpy()
    cells = {k: x_train[keys_train == k].mean(0) for k in np.unique(keys_train)}
    predicted = np.stack([cells.get(k, mean) for k in keys_test])
    print(f"colour x background cell means: {1 - ((x_test - predicted) ** 2).sum() / total:.3f}")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--results", type=Path, default=Path("results"))
    ap.add_argument("--model", default="tiny")
    ap.add_argument("--dataset", default="colors")
    ap.add_argument("--layer", default="final")
    ap.add_argument("--sae", type=Path, default=None)
    ap.add_argument("--values", nargs="+", default=["color=red", "color=blue"])
    args = ap.parse_args()
    acts = args.results / "activations" / args.model / args.dataset
    index_dir = args.results / "data" / args.dataset
    if args.sae is not None:
        hand_check(args.sae, acts, index_dir, args.layer, args.values)
    ceiling(acts, index_dir, args.layer)
    additivity(acts, index_dir, args.layer)


if __name__ == "__main__":
    main()
