"""Peak memory of ``train_sae`` on shard stores larger than its memory cap: under the cap, flat in
the rows?

Writes ``--rows`` Gaussian training rows and ``--val-rows`` validation rows as shards, then
trains one epoch of a TopK (or BatchTopK) SAE on them with ``max_in_memory_bytes`` (the cap)
below the data's size, and samples ``/proc/self/status`` every 50 ms for the peak anonymous
memory (the process's own allocations) and the peak file-backed memory (libraries and the
memory-mapped shards, which the kernel may drop at any time). Linux only.

The cap bounds the activation rows the trainer holds (``clipsae.sae.data.MemoryPlan``), not the
process: before training, the script builds an SAE and optimiser of the same settings and runs
one step on random rows (the libraries' first-use allocations, Adam's moments), frees the step's
activations and records what is resident as the baseline, then frees the model too. ``peak -
base`` is what training added on top: the activation rows the cap bounds, plus one batch's
activations through the model (training or validation: ``batch_size`` x ``d_sae`` floats and
their copies), which it does not. One size per process, so each peak is
its own:

    for n in 100000 200000 400000; do
        OMP_NUM_THREADS=1 nice -n 5 python bench/bench_train_memory.py --rows $n
    done

Columns: rows | data MiB (training + validation) | cap MiB | shuffle buffer rows | validation
rows | statistics rows | anon MiB after imports | base (model, optimiser, one step) | batch
work (one step and one validation batch above base) | peak anon MiB | peak - base | peak file
MiB | wall s | CPU s | load (1-minute average at the end).
"""

from __future__ import annotations

import argparse
import ctypes
import gc
import os
import tempfile
import threading
import time
from pathlib import Path

import numpy as np
import torch
from rss import rss_kib, watch_peaks

from clipsae.activations.shards import ActivationStore, ShardWriter
from clipsae.sae import BatchTopKConfig, TopKConfig, TrainConfig, build_sae, train_sae

try:
    from clipsae.sae.data import MemoryPlan, release_freed_memory
except ImportError:  # the trainer before the cap bounded every buffer (for a before/after)
    MemoryPlan = None

    def release_freed_memory() -> None:
        ctypes.CDLL(None).malloc_trim(0)


from clipsae.sae.metrics import reconstruction_metrics
from clipsae.sae.train import _make_optimizer


def write_store(path: Path, rows: int, d: int, shard_rows: int, seed: int) -> ActivationStore:
    writer = ShardWriter(path, d, shard_rows=shard_rows)
    rng = np.random.default_rng(seed)
    for start in range(0, rows, shard_rows):
        n = min(shard_rows, rows - start)
        writer.add(rng.normal(size=(n, d)).astype(np.float32))
    writer.close()
    return ActivationStore(path)


def train_step(sae: torch.nn.Module, opt: torch.optim.Optimizer, x: torch.Tensor) -> None:
    out = sae.train_loss(x, torch.zeros(sae.cfg.d_sae, dtype=torch.bool), 0.5)
    opt.zero_grad(set_to_none=True)
    out.loss.backward()
    opt.step()


def model_baseline(cfg: TopKConfig, tcfg: TrainConfig) -> tuple[int, int]:
    """Anonymous KiB with an SAE and its optimiser state (after a step: Adam's moments) resident
    and the libraries' first-use allocations made; and the KiB that one more training step and
    one validation batch add at their peak (sampled every millisecond), the per-batch work that
    the cap does not bound."""

    sae = build_sae(cfg)
    opt = _make_optimizer(sae, tcfg)
    x = torch.randn(tcfg.batch_size, cfg.d_in)
    train_step(sae, opt, x)
    release_freed_memory()  # the step's activations: what stays is the model and Adam's state
    base = rss_kib()["RssAnon"]
    peaks = {"RssAnon": base, "RssFile": 0}
    threading.Thread(target=watch_peaks, args=(peaks, 0.001), daemon=True).start()
    train_step(sae, opt, x)
    time.sleep(0.01)
    reconstruction_metrics(sae.eval(), [x.numpy()], dense=False)
    time.sleep(0.01)
    work = peaks["RssAnon"] - base
    del sae, opt, x
    gc.collect()
    release_freed_memory()
    return base, work


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=200_000)
    parser.add_argument("--val-rows", type=int, default=50_000)
    parser.add_argument("--d", type=int, default=256)
    parser.add_argument("--cap-mib", type=int, default=64, help="max_in_memory_bytes in MiB")
    parser.add_argument("--shard-rows", type=int, default=32768)
    parser.add_argument("--arch", choices=("topk", "batchtopk"), default="topk")
    args = parser.parse_args()
    tcfg = TrainConfig(
        batch_size=1024,
        epochs=1,
        max_in_memory_bytes=args.cap_mib << 20,
        shuffle_buffer_rows=65536,
    )
    kind = TopKConfig if args.arch == "topk" else BatchTopKConfig
    cfg = kind(d_in=args.d, d_sae=4 * args.d, k=16)
    sizes = (tcfg.shuffle_buffer_rows, tcfg.val_rows, tcfg.stats_rows)
    if MemoryPlan is not None:
        plan = MemoryPlan.from_cap(
            tcfg.max_in_memory_bytes,
            args.d,
            tcfg.batch_size,
            shuffle_buffer_rows=tcfg.shuffle_buffer_rows,
            val_rows=tcfg.val_rows,
            stats_rows=tcfg.stats_rows,
        )
        sizes = (plan.buffer_rows, plan.val_rows, plan.stats_rows)
    with tempfile.TemporaryDirectory() as tmp:
        train = write_store(Path(tmp) / "train", args.rows, args.d, args.shard_rows, seed=0)
        val = write_store(Path(tmp) / "val", args.val_rows, args.d, args.shard_rows, seed=1)
        gc.collect()
        at_start = rss_kib()
        base, work = model_baseline(cfg, tcfg)
        peaks = dict(at_start)
        threading.Thread(target=watch_peaks, args=(peaks,), daemon=True).start()
        started, cpu_started = time.perf_counter(), time.process_time()
        summary = train_sae(train, cfg, tcfg, Path(tmp) / "sae", val=val, device="cpu")
        seconds = time.perf_counter() - started
        cpu_seconds = time.process_time() - cpu_started
        assert summary["completed"]
    data_mib = (args.rows + args.val_rows) * args.d * 4 / 2**20
    print(
        f"| {args.rows} | {data_mib:.0f} | {args.cap_mib} | {sizes[0]} | {sizes[1]} | "
        f"{sizes[2]} | {at_start['RssAnon'] / 1024:.0f} | "
        f"{base / 1024:.0f} | {work / 1024:.0f} | {peaks['RssAnon'] / 1024:.0f} | "
        f"{(peaks['RssAnon'] - base) / 1024:.0f} | {peaks['RssFile'] / 1024:.0f} | "
        f"{seconds:.0f} | {cpu_seconds:.0f} | {os.getloadavg()[0]:.1f} |"
    )


if __name__ == "__main__":
    main()
