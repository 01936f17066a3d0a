"""Time and peak memory of the per-latent top-k pass (``encode_features``): linear in the rows?

Writes ``--rows`` Gaussian rows as shards and saves a TopK SAE with random weights (``--d-sae``
latents, ``k`` active per row: the pass costs the same whatever the weights), then runs the
pipeline's own step, ``clipsae.steps.features.encode_features`` (the ``encode_features`` rule:
per-latent statistics, ``--top-k`` top rows and the weak-row reservoir of ``WeakSampling()``
over 4096-row batches), on CPU. Reports wall and CPU seconds (user + system: on a shared
machine the wall time follows the other jobs, the CPU time much less), rows per CPU second,
the top rows written and the 1-minute load average at the end. Samples ``/proc/self/status``
every 50 ms for the peak anonymous memory (the process's own allocations) and the peak
file-backed memory (libraries and the memory-mapped shards, which the kernel may drop at any
time). Linux only. One size per process, so each peak is its own:

    for n in 100000 200000 400000; do
        OMP_NUM_THREADS=1 nice -n 5 python bench/bench_topk_pass.py --rows $n
    done

Columns: rows | data MiB | d_sae | wall s | CPU s | rows per CPU s | anon MiB at start |
peak anon MiB | peak file MiB | top rows | load.
"""

from __future__ import annotations

import argparse
import os
import tempfile
import threading
import time
from pathlib import Path

import numpy as np
import polars as pl
import torch
from rss import rss_kib, watch_peaks

from clipsae.activations.shards import ShardWriter
from clipsae.interpret.features import TOP_FILE, WeakSampling
from clipsae.sae import TopKConfig, build_sae, save_sae
from clipsae.steps.features import encode_features


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=200_000)
    parser.add_argument("--d", type=int, default=256)
    parser.add_argument("--d-sae", type=int, default=4096)
    parser.add_argument("--k", type=int, default=32)
    parser.add_argument("--top-k", type=int, default=9, help="top rows per latent (config: 9)")
    parser.add_argument("--shard-rows", type=int, default=32768)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        writer = ShardWriter(Path(tmp) / "acts", args.d, shard_rows=args.shard_rows)
        rng = np.random.default_rng(0)
        for start in range(0, args.rows, args.shard_rows):
            n = min(args.shard_rows, args.rows - start)
            writer.add(rng.normal(size=(n, args.d)).astype(np.float32))
        writer.close()
        cfg = TopKConfig(d_in=args.d, d_sae=args.d_sae, k=args.k)
        save_sae(build_sae(cfg, generator=torch.Generator().manual_seed(0)), Path(tmp) / "sae")
        at_start = rss_kib()
        peaks = dict(at_start)
        threading.Thread(target=watch_peaks, args=(peaks,), daemon=True).start()
        started, cpu_started = time.perf_counter(), time.process_time()
        encode_features(
            sae_dir=Path(tmp) / "sae",
            acts_dir=Path(tmp) / "acts",
            out_dir=Path(tmp),
            top_k=args.top_k,
            weak=WeakSampling(n=3, quantile=0.25),  # the config's defaults
            device="cpu",
        )
        seconds = time.perf_counter() - started
        cpu_seconds = time.process_time() - cpu_started
        top_rows = pl.read_parquet(Path(tmp) / TOP_FILE).height
    load = os.getloadavg()[0]
    print(
        f"| {args.rows} | {args.rows * args.d * 4 / 2**20:.0f} | {args.d_sae} | {seconds:.1f} | "
        f"{cpu_seconds:.1f} | {args.rows / cpu_seconds:.0f} | {at_start['RssAnon'] / 1024:.0f} | "
        f"{peaks['RssAnon'] / 1024:.0f} | {peaks['RssFile'] / 1024:.0f} | {top_rows} | "
        f"{load:.1f} |"
    )


if __name__ == "__main__":
    main()
