"""Peak memory of ``train_sae`` on shard stores larger than its in-memory cap: flat in the rows?

Writes ``--rows`` Gaussian rows as shards, trains one epoch of a TopK SAE on them with
``max_in_memory_bytes`` below the data's size (so ``BatchSource`` streams the shards instead of
loading them), and samples ``/proc/self/status`` every 50 ms for the peak anonymous memory (the
process's own allocations) and the peak file-backed memory (libraries and the memory-mapped
shards, which the kernel may drop at any time). Linux only. One size per process, so each peak is
its own:

    for n in 100000 200000 400000; do python bench/bench_train_memory.py --rows $n; done
"""

from __future__ import annotations

import argparse
import tempfile
import threading
import time
from pathlib import Path

import numpy as np

from clipsae.activations.shards import ActivationStore, ShardWriter
from clipsae.sae import TopKConfig, TrainConfig, train_sae

FIELDS = ("RssAnon", "RssFile")


def rss_kib() -> dict[str, int]:
    """This process's resident memory by kind, in KiB."""
    with open("/proc/self/status") as fh:
        pairs = (line.split(":", 1) for line in fh)
        return {key: int(value.split()[0]) for key, value in pairs if key in FIELDS}


def watch_peaks(peaks: dict[str, int], every_s: float = 0.05) -> None:
    """Raise ``peaks`` to the largest values seen, forever (a daemon thread)."""
    while True:
        for key, value in rss_kib().items():
            peaks[key] = max(peaks[key], value)
        time.sleep(every_s)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=200_000)
    parser.add_argument("--d", type=int, default=256)
    parser.add_argument("--cap-mib", type=int, default=64, help="max_in_memory_bytes in MiB")
    parser.add_argument("--shard-rows", type=int, default=32768)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        writer = ShardWriter(Path(tmp) / "acts", args.d, shard_rows=args.shard_rows)
        rng = np.random.default_rng(0)
        for start in range(0, args.rows, args.shard_rows):
            n = min(args.shard_rows, args.rows - start)
            writer.add(rng.normal(size=(n, args.d)).astype(np.float32))
        writer.close()
        at_start = rss_kib()
        peaks = dict(at_start)
        threading.Thread(target=watch_peaks, args=(peaks,), daemon=True).start()
        started = time.perf_counter()
        tcfg = TrainConfig(
            batch_size=1024,
            epochs=1,
            max_in_memory_bytes=args.cap_mib << 20,
            shuffle_buffer_rows=65536,
        )
        cfg = TopKConfig(d_in=args.d, d_sae=4 * args.d, k=16)
        train_sae(ActivationStore(Path(tmp) / "acts"), cfg, tcfg, Path(tmp) / "sae")
        seconds = time.perf_counter() - started
    print(
        f"| {args.rows} | {args.rows * args.d * 4 / 2**20:.0f} | {args.cap_mib} | "
        f"{at_start['RssAnon'] / 1024:.0f} | {peaks['RssAnon'] / 1024:.0f} | "
        f"{peaks['RssFile'] / 1024:.0f} | {seconds:.0f} |"
    )


if __name__ == "__main__":
    main()
