"""k-means clusters of SAE codes: which kinds of image the dictionary sorts a split into.

Codes are L2-normalised before clustering, so k-means groups images by which latents explain
them and in what proportion (the cosine ``similar`` ranks by), not by how strongly they fire.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import polars as pl
from PIL import Image
from sklearn.cluster import KMeans

from clipsae.interpret.collage import make_collage
from clipsae.runtime.atomic import atomic_output


@dataclass(frozen=True)
class CodeClusters:
    """``labels``: the cluster of every row. ``table``: one row per cluster, largest first, with
    ``cluster, size, members`` (the rows nearest its centre), ``member_cosine`` (theirs to the
    centre), ``top_latents`` and ``top_values`` (the latents with the largest mean code in it)."""

    labels: np.ndarray
    table: pl.DataFrame


def cluster_codes(
    codes: np.ndarray,
    *,
    n_clusters: int,
    n_members: int = 6,
    n_latents: int = 3,
    seed: int = 0,
) -> CodeClusters:
    """Cluster the rows of ``codes`` (n, d_sae) with k-means (scikit-learn, seeded)."""
    codes = np.asarray(codes, dtype=np.float32)
    if not 1 <= n_clusters <= len(codes):
        raise ValueError(f"n_clusters must be in 1..{len(codes)} (the rows), got {n_clusters}")
    unit = codes / np.maximum(np.linalg.norm(codes, axis=1, keepdims=True), 1e-12)
    kmeans = KMeans(n_clusters=n_clusters, n_init=4, random_state=seed).fit(unit)
    labels = kmeans.labels_.astype(np.int64)
    rows = []
    for cluster in range(n_clusters):
        members = np.flatnonzero(labels == cluster)
        centre = kmeans.cluster_centers_[cluster]
        cosine = unit[members] @ centre / max(float(np.linalg.norm(centre)), 1e-12)
        nearest = np.argsort(-cosine, kind="stable")[:n_members]
        mean_code = codes[members].mean(axis=0)
        latents = np.argsort(-mean_code, kind="stable")[:n_latents]
        rows.append(
            {
                "cluster": cluster,
                "size": len(members),
                "members": members[nearest].tolist(),
                "member_cosine": cosine[nearest].astype(np.float64).tolist(),
                "top_latents": latents.tolist(),
                "top_values": mean_code[latents].astype(np.float64).tolist(),
            }
        )
    table = pl.DataFrame(rows).sort(["size", "cluster"], descending=[True, False])
    return CodeClusters(labels, table)


def cluster_title(row: dict) -> str:
    latents = ", ".join(str(latent) for latent in row["top_latents"])
    return f"cluster {row['cluster']} · n={row['size']} · latents {latents}"


def cluster_collage(
    row: dict, open_row: Callable[[int], Image.Image], *, tile: int = 96, cols: int = 3
) -> Image.Image:
    """One cluster (a row of ``CodeClusters.table``): its members nearest the centre, labelled
    with their cosine to it, under a title with its size and top latents."""
    images = [open_row(member) for member in row["members"]]
    return make_collage(images, row["member_cosine"], cluster_title(row), tile, cols)


def write_cluster_collages(
    clusters: CodeClusters,
    open_row: Callable[[int], Image.Image],
    out_dir: Path,
    *,
    tile: int = 96,
) -> list[Path]:
    """``cluster_NNN.jpg`` per cluster (``cluster_collage``)."""
    paths = []
    for row in clusters.table.iter_rows(named=True):
        collage = cluster_collage(row, open_row, tile=tile)
        path = Path(out_dir) / f"cluster_{row['cluster']:03d}.jpg"
        with atomic_output(path) as tmp:
            collage.save(tmp, quality=90)
        paths.append(path)
    return paths
