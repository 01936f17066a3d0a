"""Dead latents of a TopK + AuxK SAE at expansion 8: how they depend on the data's dimensionality
and on the dictionary initialisation.

Trains the demo's SAE as ``config/config.yaml`` defines it (TopK, k 8, expansion 8, AuxK and
resampling), once per ``dict_init``, on Gaussians that fill r of 128 dimensions, a control whose
effective dimension is known, and on the demo's activations when they exist. A latent is dead if it
fires on none of the held-out rows. Prints a Markdown table and writes
``bench/out/bench_dead_latents.json``.

``--palettes 8 16 24`` adds the demo itself with longer colour palettes: for each, the embedded
CLIP is built on captions with that many colours (about 7 min each at the demo's 2400 steps,
1 min with ``--build-steps 400``), the demo's ``colors`` dataset is drawn from the same palette,
and the table gains the final layer's numbers and the model's zero-shot colour accuracy.

``--dead-windows 10 16 32 64`` prints another table instead: the SAE trained on the demo
activations with each dead-latent window (``dead_steps_threshold``) and with AuxK and resampling
off, dead counted over the training rows, the first 1000 held-out rows and all of them
(``bench/out/bench_dead_latents_windows.json``).

    python bench/bench_dead_latents.py [--activations results/activations/tiny/shapes]
        [--config config/config.yaml --sae topk8-x8] [--palettes 8 16 24 [--build-steps 400]]
        [--dead-windows 10 16 32 64]
"""

from __future__ import annotations

import argparse
import json
import tempfile
from pathlib import Path

import numpy as np
import torch

from clipsae.activations.extract import iter_image_batches
from clipsae.activations.shards import batches_of, load_activations
from clipsae.config.validate import load_config
from clipsae.data import build_dataset, dataset_source_spec
from clipsae.data.synthetic import PALETTE
from clipsae.models.clip import VisionActivations, load_clip
from clipsae.models.embedded import WEIGHTS_FILE, BuildConfig, build_embedded_clip
from clipsae.models.text import class_embeddings
from clipsae.sae import SAE, load_sae, train_sae
from clipsae.sae.entry import sae_configs
from clipsae.sae.metrics import reconstruction_metrics

SMALL_EVAL = 1000


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
    """Held-out FVU, and the dead fraction over the held-out rows, over their first
    ``SMALL_EVAL`` rows and over the training rows: a latent rarer than one row in the
    evaluation set looks dead there whatever the trainer did."""
    cfg, tcfg = sae_configs(entry, train.shape[1])
    with tempfile.TemporaryDirectory() as out:
        train_sae(train, cfg, tcfg, Path(out), device="cpu")
        sae = load_sae(Path(out))
    held = _metrics(sae, held_out)
    return {
        "fvu": held["fvu"],
        "dead_frac": held["dead_frac"],
        "dead_frac_small_eval": _metrics(sae, held_out[:SMALL_EVAL])["dead_frac"],
        "dead_frac_train": _metrics(sae, train)["dead_frac"],
    }


def _metrics(sae: SAE, rows: np.ndarray) -> dict[str, float]:
    return reconstruction_metrics(sae, batches_of(rows), dense=False)


def palette_demo(config: dict, n_colors: int, work: Path) -> tuple[list[np.ndarray], float]:
    """Final-layer activations (train, test) of the demo's ``colors`` dataset drawn from the first
    ``n_colors`` palette colours, under an embedded CLIP built on the same palette, and that
    model's zero-shot accuracy on the test images' colours."""
    colors = list(PALETTE)[:n_colors]
    (name, model), entry = next(iter(config["models"].items())), config["datasets"]["colors"]
    build_embedded_clip(model["arch"], work, BuildConfig(**{**model["build"], "colors": colors}))
    clip = load_clip(model["arch"], str(work / WEIGHTS_FILE))
    dataset = build_dataset("colors", {**dataset_source_spec(entry), "colors": colors})
    classes = class_embeddings(clip, dataset.class_names, entry["templates"])
    encoder, splits, all_records = VisionActivations(clip.model, None), [], dataset.records()
    for split in ("train", "test"):
        records = [r for r in all_records if r.split == split]
        with torch.inference_mode():
            batches = iter_image_batches(dataset, records, clip.preprocess, clip.device, desc=name)
            splits.append(np.concatenate([encoder(x).cpu().numpy() for x, _ in batches]))
    labels = np.array([r.label for r in records])
    accuracy = (np.argmax(splits[1] @ classes.T, axis=1) == labels).mean()
    return splits, float(accuracy)


def window_sweep(
    datasets: dict[str, list[np.ndarray]], entry: dict, windows: list[int]
) -> list[dict]:
    """The configured recipe with each dead-latent window (``dead_steps_threshold``), and with
    AuxK and resampling off: a window shorter than the gaps between a rare latent's firings marks
    it dead, and AuxK and resampling then pull it away from the rows it fired on."""
    recipes = {
        f"{w} steps ({w * entry['batch_size']} rows)": {"dead_steps_threshold": w} for w in windows
    }
    recipes["AuxK and resampling off"] = {"aux_k_coef": 0.0, "resample_every": None}
    rows = []
    print(
        "| data | dead window | held-out FVU | dead, training rows | dead, first "
        f"{SMALL_EVAL} held-out | dead, all held-out |"
    )
    print("|---|---|---|---|---|---|")
    for name, (train, held_out) in datasets.items():
        for recipe, change in recipes.items():
            result = {"data": name, "recipe": recipe} | measure(train, held_out, entry | change)
            rows.append(result)
            print(
                f"| {name} ({len(train)} + {len(held_out)} rows) | {recipe} | {result['fvu']:.3f} "
                f"| {result['dead_frac_train']:.1%} | {result['dead_frac_small_eval']:.1%} "
                f"| {result['dead_frac']:.1%} |",
                flush=True,
            )
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--activations", type=Path, default=Path("results/activations/tiny/shapes"))
    parser.add_argument("--config", type=Path, default=Path("config/config.yaml"))
    parser.add_argument("--sae", default="topk8-x8", help="the entry of `saes` to train")
    parser.add_argument("--out", type=Path, default=Path("bench/out/bench_dead_latents.json"))
    parser.add_argument(
        "--palettes", type=int, nargs="*", default=[], help="demo palette sizes to build and add"
    )
    parser.add_argument("--build-steps", type=int, help="embedded CLIP steps (default: config's)")
    parser.add_argument(
        "--dead-windows",
        type=int,
        nargs="*",
        default=[],
        help="dead_steps_threshold values to compare on --activations (instead of the init table)",
    )
    args = parser.parse_args()
    config = load_config(args.config)
    build = next(iter(config["models"].values()))["build"]
    build["steps"] = args.build_steps or build["steps"]
    entry = config["saes"][args.sae]
    torch.manual_seed(0)

    demo = {}
    for layer in ("final", "block2"):
        train, test = (args.activations / split / layer for split in ("train", "test"))
        if train.exists() and test.exists():
            demo[f"demo {args.activations.name}, {layer}"] = [
                load_activations(t) for t in (train, test)
            ]
    if args.dead_windows:
        if not demo:
            parser.error(f"--dead-windows needs {args.activations}/{{train,test}}/{{final,block2}}")
        rows = window_sweep(demo, entry, args.dead_windows)
        args.out.parent.mkdir(parents=True, exist_ok=True)
        args.out.with_name(args.out.stem + "_windows.json").write_text(json.dumps(rows, indent=2))
        return
    datasets = {f"Gaussian, rank {r}": np.split(gaussian(r), [4000]) for r in (16, 32, 64)}
    datasets |= demo
    for n in args.palettes:
        with tempfile.TemporaryDirectory() as work:
            splits, accuracy = palette_demo(config, n, Path(work))
        name = f"demo colors, final, {n} colours, {build['steps']} steps (zero-shot {accuracy:.3f})"
        datasets[name] = splits

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
