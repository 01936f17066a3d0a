"""Step ``collages``: top and weak images of the configured and the most frequent latents."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import polars as pl

from clipsae.data import build_dataset, dataset_source_spec, read_index
from clipsae.interpret.collage import collage_latents, default_titles, write_collages
from clipsae.interpret.features import STATS_FILE, TOP_FILE, WEAK_FILE


def collages(
    *,
    features_dir: Path,
    acts_dir: Path,
    dataset_name: str,
    dataset_entry: dict,
    index_dir: Path,
    out_dir: Path,
    n_latents: int,
    tile: int,
    latents: Sequence[int] = (),
) -> None:
    """One collage per latent in ``latents`` (a configured list) and per one of the ``n_latents``
    most frequent others. The contrast row comes from ``weak_images.parquet`` where
    ``encode_features`` wrote one (features written before it existed have none)."""
    features_dir = Path(features_dir)
    stats = pl.read_parquet(features_dir / STATS_FILE)
    top = pl.read_parquet(features_dir / TOP_FILE)
    weak_path = features_dir / WEAK_FILE
    weak = pl.read_parquet(weak_path) if weak_path.is_file() else None
    dataset = build_dataset(dataset_name, dataset_source_spec(dataset_entry))
    records, _ = read_index(Path(index_dir))
    by_id = {r.id: r for r in records}
    row_ids = pl.read_parquet(Path(acts_dir) / "index.parquet")["id"].to_list()
    write_collages(
        top,
        collage_latents(stats, n_latents, latents),
        lambda row: dataset.open_image(by_id[row_ids[row]]),
        Path(out_dir),
        default_titles(stats),
        tile=tile,
        weak=weak,
    )
