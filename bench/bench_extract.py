"""Extraction throughput against the bare model forward, in the same process.

The baseline is what extraction cannot avoid: ``encode_image`` on already-preprocessed tensors.
Our extraction adds image decoding, preprocessing, shard writing and checksums, and saves the
blocks after the requested layer (``block{N}`` stops early), so the ratio says how much the
pipeline costs on top of the model, or saves.

    python bench/bench_extract.py --arch ViT-B-32 --images 128 --layers final block5
"""

from __future__ import annotations

import argparse
import shutil
import tempfile
import time
from pathlib import Path

import torch

from clipsae.activations.extract import extract_activations
from clipsae.data import build_dataset
from clipsae.models.clip import load_clip


def bare_forward(clip, batches: list[torch.Tensor]) -> float:
    start = time.perf_counter()
    with torch.inference_mode():
        for batch in batches:
            clip.model.encode_image(batch)
    return time.perf_counter() - start


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--arch", default="ViT-B-32")
    parser.add_argument("--images", type=int, default=128)
    parser.add_argument("--batch-size", type=int, default=32)
    parser.add_argument("--layers", nargs="+", default=["final"])
    parser.add_argument("--threads", type=int, default=2)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    torch.manual_seed(0)

    clip = load_clip(args.arch, "none", device="cpu")
    spec = {"source": "synthetic", "n_train": args.images, "n_test": 0, "seed": 0}
    dataset = build_dataset("bench", spec)
    records = dataset.records()
    images = [clip.preprocess(dataset.open_image(r)) for r in records]
    batches = [
        torch.stack(images[i : i + args.batch_size]) for i in range(0, len(images), args.batch_size)
    ]
    bare_forward(clip, batches[:1])  # warm-up
    baseline = bare_forward(clip, batches)
    print(f"{args.arch}: bare encode_image {args.images / baseline:.1f} img/s")
    tmp = Path(tempfile.mkdtemp())
    try:
        for layer in args.layers:
            start = time.perf_counter()
            extract_activations(clip, dataset, records, layer, tmp / layer, args.batch_size)
            ours = time.perf_counter() - start
            print(
                f"{args.arch} {layer}: extraction {args.images / ours:.1f} img/s, "
                f"{baseline / ours:.2f}x the bare forward (decode + preprocess + write included)"
            )
    finally:
        shutil.rmtree(tmp)


if __name__ == "__main__":
    main()
