"""Step ``collages``: the top images of the most frequent latents, one JPEG each."""

from __future__ import annotations

from pathlib import Path

import polars as pl

from clipsae.config.validate import dataset_source_spec
from clipsae.data import build_dataset, read_index
from clipsae.interpret.collage import default_titles, select_latents, write_collages


def collages(
    features_dir: Path,
    acts_dir: Path,
    dataset_name: str,
    dataset_entry: dict,
    index_dir: Path,
    out_dir: Path,
    n_latents: int,
    tile: int,
) -> None:
    stats = pl.read_parquet(Path(features_dir) / "stats.parquet")
    top = pl.read_parquet(Path(features_dir) / "top_images.parquet")
    dataset = build_dataset(dataset_name, dataset_source_spec(dataset_entry))
    records, _ = read_index(Path(index_dir))
    by_id = {r.id: r for r in records}
    row_ids = pl.read_parquet(Path(acts_dir) / "index.parquet")["id"].to_list()
    latents = select_latents(stats, n_latents)
    write_collages(
        top,
        latents,
        lambda row: dataset.open_image(by_id[row_ids[row]]),
        Path(out_dir),
        default_titles(stats),
        tile=tile,
    )
