"""How the gradient clip changes Adam's steps on the demo (bench/README.md, "The new trainer
defaults: gradient clipping raised the dead latents").

Trains an SAE entry of ``--config`` on the demo's activations up to a few steps, once per
``grad_clip``, and reads the checkpoint's Adam moments: the mean over elements of
``|m_hat| / sqrt(v_hat)``, the size of the next step in units of the learning rate.

    python bench/bench_clip_adam_state.py --acts results/activations/tiny/colors \
        [--config config/config.yaml --sae topk8-x8] [--clips 1 none 8] [--steps 20 40 80 120]
"""

from __future__ import annotations

import argparse
import shutil
import tempfile
from pathlib import Path

from safetensors import safe_open

from clipsae.activations.shards import load_activations
from clipsae.config.matrix import sae_hyperparameters
from clipsae.config.validate import load_config
from clipsae.sae import train_sae
from clipsae.sae.entry import sae_configs
from clipsae.sae.train import CHECKPOINT_FILE


def adam_step_size(checkpoint: Path, parameter: str, betas: tuple[float, float]) -> float:
    """Mean |m_hat| / sqrt(v_hat) of one parameter's Adam state."""
    with safe_open(checkpoint, framework="pt") as fh:
        step = float(fh.get_tensor(f"opt.{parameter}.step"))
        m = fh.get_tensor(f"opt.{parameter}.exp_avg") / (1 - betas[0] ** step)
        v = fh.get_tensor(f"opt.{parameter}.exp_avg_sq") / (1 - betas[1] ** step)
    return float((m.abs() / (v.sqrt() + 1e-12)).mean())


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--acts", type=Path, default=Path("results/activations/tiny/colors"))
    ap.add_argument("--layer", default="final")
    ap.add_argument("--config", type=Path, default=Path("config/config.yaml"))
    ap.add_argument("--sae", default="topk8-x8")
    ap.add_argument("--clips", nargs="+", default=["1", "none", "8"])
    ap.add_argument("--steps", nargs="+", type=int, default=[20, 40, 80, 120])
    args = ap.parse_args()
    base = sae_hyperparameters(load_config(args.config)["saes"][args.sae])
    train = load_activations(args.acts / "train" / args.layer)
    val = load_activations(args.acts / "test" / args.layer)
    print("| grad_clip | " + " | ".join(f"step {s}: W_enc / W_dec" for s in args.steps) + " |")
    with tempfile.TemporaryDirectory() as tmp:
        for clip in args.clips:
            entry = {**base, "grad_clip": None if clip == "none" else float(clip)}
            cfg, tcfg = sae_configs(entry, train.shape[1])
            cells = []
            for stop in args.steps:
                out = Path(tmp) / f"{clip}-{stop}"
                shutil.rmtree(out, ignore_errors=True)
                train_sae(train, cfg, tcfg, out, val=val, device="cpu", stop_after=stop)
                sizes = [
                    adam_step_size(out / CHECKPOINT_FILE, p, tcfg.adam_betas)
                    for p in ("W_enc", "W_dec")
                ]
                cells.append(" / ".join(f"{s:.3f}" for s in sizes))
            print(f"| {clip} | " + " | ".join(cells) + " |", flush=True)


if __name__ == "__main__":
    main()
