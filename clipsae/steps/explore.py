"""Step ``explore``: what the report shows of exploring one run, computed in one cheap job.

k-means clusters of the SAE codes of the test split (a few images each, as one sheet of
collages), and one worked example each of ``clipsae explain`` (a seeded test image's top latents)
and ``clipsae search`` (the latents nearest to a seeded class name of the dataset, with their top
images). The stored activations are what extraction computed for these images, so no CLIP image
pass is needed, and the search text's embedding is the dataset's prompt-ensembled class embedding
(``embed_text``), the zero-shot classifier's: no text pass either.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, fields
from pathlib import Path

import numpy as np
import polars as pl
from PIL import Image

from clipsae.activations.row_index import read_row_ids
from clipsae.activations.shards import ActivationStore, batches_of
from clipsae.explore.clusters import cluster_codes, cluster_collage
from clipsae.explore.latents import explain, nearest_directions, top_rows, with_names
from clipsae.explore.run import encode, read_names
from clipsae.explore.sheet import stack_vertically
from clipsae.interpret.collage import make_collage
from clipsae.interpret.features import STATS_FILE, TOP_FILE
from clipsae.runtime.atomic import atomic_output, atomic_write_json
from clipsae.runtime.device import DeviceSpec, pick_device
from clipsae.sae import SAE, load_sae
from clipsae.steps.common import row_opener
from clipsae.steps.naming import concept_directions

CLUSTERS_FILE = "clusters.parquet"
CLUSTERS_IMAGE = "clusters.jpg"
EXAMPLES_FILE = "examples.json"
EXAMPLES_IMAGE = "examples.jpg"


@dataclass(frozen=True)
class ExploreSettings:
    """Config ``explore``, parsed once by the workflow script; the schema holds its defaults."""

    n_clusters: int
    """k-means clusters."""
    n_members: int
    """Images shown per cluster, those nearest its centre; also the sheets' columns."""
    top_n: int
    """Latents shown by the explain and the search example."""
    images: int
    """Top images per latent of the search example."""
    max_rows: int
    """k-means runs on a seeded sample of at most this many test rows, so that the job stays
    cheap for wide SAEs on large splits."""
    tile: int
    """Tile size of the sheets, in pixels."""
    seed: int
    """Draws the sample, the explained image and the searched class."""

    def __post_init__(self) -> None:
        for item in fields(self):
            if item.name != "seed" and getattr(self, item.name) < 1:
                value = getattr(self, item.name)
                raise ValueError(f"explore.{item.name} must be at least 1, got {value}")


def _codes(sae: SAE, activations: np.ndarray) -> np.ndarray:
    return np.concatenate([encode(sae, batch) for batch in batches_of(activations)])


def _save_jpeg(image: Image.Image, path: Path) -> None:
    with atomic_output(path) as tmp:
        image.save(tmp, quality=90)


def _clusters(
    codes: np.ndarray, sample: np.ndarray, *, ids: list[str], names: pl.DataFrame,
    settings: ExploreSettings,
) -> pl.DataFrame:  # fmt: skip
    """The clusters of the sampled rows' codes, their ``members`` as activation rows of the
    split, with those images' ``member_ids`` and the ``top_names`` of their top latents."""
    clusters = cluster_codes(
        codes,
        n_clusters=min(settings.n_clusters, len(codes)),
        n_members=settings.n_members,
        seed=settings.seed,
    )
    members = [[int(sample[m]) for m in rows] for rows in clusters.table["members"]]
    label = dict(zip(names["latent"], names["label_en"], strict=True))
    top_names = [[label.get(lat) or "" for lat in row] for row in clusters.table["top_latents"]]
    return clusters.table.with_columns(
        members=pl.Series(members, dtype=pl.List(pl.Int64)),
        member_ids=pl.Series([[ids[r] for r in rows] for rows in members]),
        top_names=pl.Series(top_names, dtype=pl.List(pl.String)),
    )


def _search(
    sae_dir: Path, query: np.ndarray, *, layer: str, model: dict, weights: Path | None,
    features_dir: Path, names: pl.DataFrame, top_n: int, images: int, ids: list[str],
) -> list[dict]:  # fmt: skip
    """``clipsae search`` on a text embedding: the live latents nearest to it, with their names
    and their ``images`` top images (``row``, ``id``, ``activation``)."""
    stats = pl.read_parquet(Path(features_dir) / STATS_FILE)
    directions = concept_directions(sae_dir=sae_dir, layer=layer, model=model, weights=weights)
    live = (stats["fire_count"] > 0).to_numpy()
    found = with_names(nearest_directions(query, directions, top_n=top_n, live=live), names)
    top = pl.read_parquet(Path(features_dir) / TOP_FILE)
    hits = []
    for hit in found.to_dicts():
        shown = top_rows(top, hit["latent"], images).to_dicts()
        hits.append({**hit, "images": [{**r, "id": ids[r["row"]]} for r in shown]})
    return hits


def _examples_sheet(
    explained: dict, search: dict, open_row: Callable[[int], Image.Image], *,
    settings: ExploreSettings,
) -> Image.Image:  # fmt: skip
    """The explained image, then a row of top images per searched latent, as one sheet."""
    tile, cols = settings.tile, settings.n_members
    value = explained["latents"][0]["activation"]
    title = f"explain {explained['id']}"
    panels = [make_collage([open_row(explained["row"])], [value], title, tile, cols)]
    for hit in search["latents"]:
        title = f"search {search['text']!r}: latent {hit['latent']}, cos {hit['cosine']:.2f}"
        images = [open_row(image["row"]) for image in hit["images"]]
        values = [image["activation"] for image in hit["images"]]
        panels.append(make_collage(images, values, title, tile, cols))
    return stack_vertically(panels)


def explore_run(
    *,
    sae_dir: Path,
    acts_dir: Path,
    features_dir: Path,
    names_csv: Path,
    dataset_name: str,
    dataset_entry: dict,
    index_dir: Path,
    classes_npy: Path,
    layer: str,
    model: dict,
    weights: Path | None,
    out_dir: Path,
    settings: ExploreSettings,
    device: DeviceSpec = "auto",
) -> None:
    """Write ``clusters.parquet``, ``clusters.jpg``, ``examples.json`` and ``examples.jpg``.

    One generator seeded by ``settings.seed`` draws, in order, the clustered rows, the explained
    image (among those that activate a latent) and the searched class, so a rerun shows the same.
    """
    out_dir = Path(out_dir)
    rng = np.random.default_rng(settings.seed)
    sae = load_sae(Path(sae_dir), pick_device(device)).eval()
    acts = ActivationStore(Path(acts_dir)).load_all()
    ids = read_row_ids(Path(acts_dir))
    open_row = row_opener(dataset_name, dataset_entry, Path(index_dir), Path(acts_dir))
    names = read_names(Path(names_csv))
    sample = np.sort(rng.choice(len(acts), size=min(settings.max_rows, len(acts)), replace=False))
    codes = _codes(sae, acts[sample])
    table = _clusters(codes, sample, ids=ids, names=names, settings=settings)
    with atomic_output(out_dir / CLUSTERS_FILE) as tmp:
        table.write_parquet(tmp)
    cols = settings.n_members
    panels = [cluster_collage(r, open_row, tile=settings.tile, cols=cols) for r in table.to_dicts()]
    _save_jpeg(stack_vertically(panels), out_dir / CLUSTERS_IMAGE)

    busy = sample[codes.max(axis=1) > 0]
    if not len(busy):
        raise ValueError(f"{sae_dir}: no test image activates any latent, so none can be explained")
    row = int(rng.choice(busy))
    explained = explain(sae, acts[row], top_n=settings.top_n, names=names)
    classes = pl.read_parquet(Path(classes_npy).with_suffix(".parquet"))
    pick = int(rng.integers(len(classes)))
    hits = _search(Path(sae_dir), np.load(classes_npy)[classes["label"][pick]], layer=layer,
                   model=model, weights=weights, features_dir=Path(features_dir), names=names,
                   top_n=settings.top_n, images=settings.images, ids=ids)  # fmt: skip
    examples = {
        "explain": {"row": row, "id": ids[row], "latents": explained.to_dicts()},
        "search": {"text": classes["name"][pick], "latents": hits},
        "clusters": {"n_rows": len(sample), "n_clusters": len(table)},
    }
    atomic_write_json(examples, out_dir / EXAMPLES_FILE)
    sheet = _examples_sheet(examples["explain"], examples["search"], open_row, settings=settings)
    _save_jpeg(sheet, out_dir / EXAMPLES_IMAGE)
