"""The demo's SAE retrained with other settings on the demo's activations: held-out FVU and dead
latents (as the workflow's ``recon.json`` counts them), and the ground-truth recovery of every
factor value with vocabulary naming (as the workflow's ``ground_truth.json``).

Each ``--variant`` is ``NAME`` or ``NAME:key=value,key=value``: the ``saes`` entry ``--sae`` of
``--config`` with those keys replaced (``key=null`` for None, ``-key`` drops a key;
``arch=matryoshka_prefix`` etc. work, keys that do not apply are refused as in the workflow).
``--prefix N`` scores a Matryoshka SAE's first N latents only. Prints one Markdown row per
(variant, seed, dataset, layer) and writes ``--out``/results.json.

    python bench/bench_demo_saes.py --results results --datasets colors shapes --layers final \
        --variant demo --variant x1k4:expansion=1,k=4 [--seeds 0 1] [--no-truth]
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import numpy as np
import polars as pl
import torch
import yaml

from clipsae.activations.shards import batches_of, load_activations
from clipsae.config.matrix import sae_hyperparameters
from clipsae.config.validate import load_config
from clipsae.evaluate.sweep import prefix
from clipsae.interpret.ground_truth import RECOVERED_F1, ground_truth
from clipsae.interpret.naming import name_latents
from clipsae.sae import load_sae, train_sae
from clipsae.sae.entry import sae_configs
from clipsae.sae.metrics import reconstruction_metrics
from clipsae.steps.ground_truth import _split_factors


def parse_variant(text: str) -> tuple[str, dict]:
    name, _, rest = text.partition(":")
    changes = {}
    for item in filter(None, rest.split(",")):
        key, _, value = item.partition("=")
        changes[key] = DROP if key.startswith("-") else yaml.safe_load(value)
    return name, changes


DROP = "(dropped)"


def truth_row(sae, acts: Path, index_dir: Path, layer: str, vocab: Path | None) -> dict:
    """Recovery by factor, mean F1 and naming top-1 (all values, recovered ones) of ``sae``."""
    train_dir, test_dir = acts / "train" / layer, acts / "test" / layer
    train_x, test_x = load_activations(train_dir), load_activations(test_dir)
    f_train, f_test = _split_factors(train_dir, test_dir, index_dir, None)
    names = None
    if vocab is not None:
        table = pl.read_parquet(vocab.with_suffix(".parquet"))
        names = {"sae": name_latents(sae.W_dec.detach().numpy(), np.load(vocab), table, top_n=3)}
    table, summary = ground_truth(
        {"sae": sae.encode},
        lambda: batches_of(train_x),
        lambda: batches_of(test_x),
        f_train,
        f_test,
        names=names,
    )
    s = summary["methods"]["sae"]
    recovered = table.filter(pl.col("f1") >= RECOVERED_F1)
    by_factor_named = {}
    for factor in f_train.names:
        part = recovered.filter(pl.col("factor") == factor).drop_nulls("name_top1")
        by_factor_named[factor] = float(part["name_top1"].mean()) if len(part) else None
    return {
        "recovered_by_factor": s["recovered_by_factor"],
        "recovered_fraction": s["recovered_fraction"],
        "mean_f1_by_factor": {
            f: float(g["f1"].mean()) for (f,), g in table.group_by("factor", maintain_order=True)
        },
        "naming_top1": s.get("naming_top1"),
        "naming_top1_recovered": s.get("naming_top1_recovered"),
        "naming_top1_recovered_by_factor": by_factor_named,
        "mono": s["latents"],
    }


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--results", type=Path, default=Path("results"))
    ap.add_argument("--config", type=Path, default=Path("config/config.yaml"))
    ap.add_argument("--sae", default="topk8-x8")
    ap.add_argument("--model", default="tiny")
    ap.add_argument("--datasets", nargs="+", default=["colors"])
    ap.add_argument("--layers", nargs="+", default=["final"])
    ap.add_argument("--variant", action="append", default=[])
    ap.add_argument("--seeds", nargs="+", type=int, default=[0])
    ap.add_argument("--prefix", type=int, default=None)
    ap.add_argument("--no-truth", action="store_true")
    ap.add_argument("--out", type=Path, default=Path("bench/out/demo_saes"))
    args = ap.parse_args()
    base = sae_hyperparameters(load_config(args.config)["saes"][args.sae])
    out = []
    args.out.mkdir(parents=True, exist_ok=True)
    print(
        "| variant | seed | data | layer | FVU | dead | recovered shape / colour / background "
        "| mean F1 colour | naming top-1 of recovered colours | s |"
    )
    for text in args.variant or ["demo"]:
        name, changes = parse_variant(text)
        entry = {**base, **{k: v for k, v in changes.items() if v is not DROP}}
        entry = {k: v for k, v in entry.items() if f"-{k}" not in changes}
        for seed in args.seeds:
            for dataset in args.datasets:
                acts = args.results / "activations" / args.model / dataset
                for layer in args.layers:
                    train_x = load_activations(acts / "train" / layer)
                    test_x = load_activations(acts / "test" / layer)
                    cfg, tcfg = sae_configs({**entry, "seed": seed}, train_x.shape[1])
                    run_dir = args.out / f"{name}-s{seed}-{dataset}-{layer}"
                    started = time.perf_counter()
                    torch.manual_seed(seed)
                    train_sae(train_x, cfg, tcfg, run_dir, val=test_x, device="cpu")
                    seconds = time.perf_counter() - started
                    sae = load_sae(run_dir, "cpu").eval()
                    if args.prefix is not None:
                        sae = prefix(sae, args.prefix).eval()
                    recon = reconstruction_metrics(sae, batches_of(test_x), dense=False)
                    row = {"variant": name, "changes": changes, "seed": seed, "dataset": dataset}
                    row |= {"layer": layer, "fvu": recon["fvu"], "dead_frac": recon["dead_frac"]}
                    row |= {"d_sae": cfg.d_sae, "train_seconds": seconds}
                    if not args.no_truth:
                        vocab = args.results / "text" / args.model / "vocab.npy"
                        row |= truth_row(
                            sae,
                            acts,
                            args.results / "data" / dataset,
                            layer,
                            vocab if layer == "final" else None,
                        )
                    out.append(row)
                    rec = row.get("recovered_by_factor", {})
                    named = row.get("naming_top1_recovered_by_factor", {}).get("color")
                    cells = [
                        name,
                        str(seed),
                        dataset,
                        layer,
                        f"{row['fvu']:.3f}",
                        f"{100 * row['dead_frac']:.1f}%",
                        " / ".join(f"{rec.get(f, float('nan')):.2f}" for f in FACTORS),
                        f"{row.get('mean_f1_by_factor', {}).get('color', float('nan')):.2f}",
                        "-" if named is None else f"{named:.2f}",
                        f"{seconds:.0f}",
                    ]
                    print("| " + " | ".join(cells) + " |", flush=True)
                    (args.out / "results.json").write_text(json.dumps(out, indent=1))


FACTORS = ("shape", "color", "background")

if __name__ == "__main__":
    main()
