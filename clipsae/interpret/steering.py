"""Steering, checked: one SAE latent set to a chosen value, and what zero-shot and retrieval see.

An edit sets latent ``j`` of the SAE code to ``value`` and adds the change of the decoded vector
to the activation: ``x' = x + (value - c_j(x)) * W_dec[j] / input_scale``. The decoder is affine
in the codes for every architecture (``SAE.decode``), so this is ``x + decode(c') - decode(c)``:
the SAE's reconstruction error and every other latent stay as they were, and a setting that
leaves the code unchanged leaves the image embedding unchanged. Only the latent's effect is
measured, not the SAE's reconstruction loss (``clipsae.evaluate.zeroshot`` measures that).

At ``final`` the edited activation is the image embedding; at ``block{N}`` the edit is spliced
into the CLS token and the rest of the vision tower runs (``spliced_forwards``). Zero-shot
predictions use L2-normalised embeddings against the class text embeddings at CLIP's logit scale.

Per setting (``Setting``) the tally reports, over the images of a split:

- ``flip_to_target``: of the images not predicted as the target class before, the share
  predicted as it after (amplification should make this high);
- ``target_removed``: of the images predicted as the target before, the share predicted as
  something else after (ablation should make this high);
- ``other_changed``: the share whose prediction over a second class set (another factor, e.g.
  shapes when the target is a colour) changed (should stay low);
- ``nn_target_before`` / ``nn_target_after``: for query images, the share of their ``k``
  nearest images (cosine, clean embeddings of the split, the query itself left out) whose
  factor value is the target, before and after the edit.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass
from functools import partial

import numpy as np
import polars as pl
import torch
from torch.nn import functional as F

from clipsae.activations.extract import iter_image_batches
from clipsae.data import ImageDataset, Record
from clipsae.evaluate.zeroshot import LOGIT_SCALE
from clipsae.models.architectures import parse_layer
from clipsae.models.clip import LoadedClip, VisionActivations
from clipsae.sae import SAE

# One batch: clean image embeddings, the SAE's input activations, a function from a change of
# those activations to the embeddings it leads to, and the batch's row numbers (into the table
# of factor values). The SAE encodes a batch once, whatever the number of settings.
Forward = tuple[torch.Tensor, torch.Tensor, Callable[[torch.Tensor], torch.Tensor], np.ndarray]
DEFAULT_MULTIPLIERS = (0.5, 1.0, 2.0, 4.0)
COUNTS = ("n", "target_before", "target_after", "flipped", "not_target_before", "removed")
COUNTS += ("changed", "other_changed", "p_target_before", "p_target_after")


@dataclass(frozen=True)
class Setting:
    """Set ``latent`` to ``value`` (0 ablates it); ``target`` is its class in the class set."""

    latent: int
    target: int
    target_name: str
    setting: str
    value: float


def latent_delta(sae: SAE, codes: torch.Tensor, latent: int, value: float) -> torch.Tensor:
    """The change ``(value - c_latent) * W_dec[latent] / input_scale`` of the activations whose
    SAE ``codes`` are given: what setting the latent to ``value`` does (module docstring)."""
    direction = sae.W_dec[latent].detach() / sae.scale
    return (value - codes[:, latent : latent + 1]) * direction.to(codes)


def activation_percentiles(
    encode: Callable[[torch.Tensor], torch.Tensor],
    batches: Iterable[np.ndarray],
    latents: Sequence[int],
    q: float = 99.0,
    device: torch.device | None = None,
) -> np.ndarray:
    """The ``q``-th percentile of each latent's positive activations over a batch stream.

    Over the rows where the latent fires, so a latent active on 2% of the images still gets
    the value it takes on its own images (over all rows its 99th percentile would be 0). Keeps
    the chosen latents' activations only (rows x len(latents)); 0 for a latent that never fires.
    """
    device = device or torch.device("cpu")
    columns = []
    with torch.inference_mode():
        for batch in batches:
            x = torch.as_tensor(np.asarray(batch, dtype=np.float32), device=device)
            columns.append(encode(x)[:, list(latents)].float().cpu().numpy())
    acts = np.concatenate(columns)
    return np.array([np.percentile(a[a > 0], q) if (a > 0).any() else 0.0 for a in acts.T])


def sweep(
    latents: Sequence[tuple[int, int, str]],
    peaks: Sequence[float],
    multipliers: Sequence[float] = DEFAULT_MULTIPLIERS,
) -> list[Setting]:
    """Ablation plus ``multiplier x peak`` for each (latent, target class, target name)."""
    settings = []
    for (latent, target, name), peak in zip(latents, peaks, strict=True):
        settings.append(Setting(latent, target, name, "ablate", 0.0))
        settings += [Setting(latent, target, name, f"x{m:g}", m * peak) for m in multipliers]
    return settings


def embedding_forwards(batches: Iterable[np.ndarray], device: torch.device) -> Iterator[Forward]:
    """``final``: the activations are the embeddings, and a change applies to them directly."""
    start = 0
    for batch in batches:
        x = torch.as_tensor(np.asarray(batch, dtype=np.float32), device=device)
        yield x, x, (lambda delta, x=x: x + delta), np.arange(start, start + len(x))
        start += len(x)


def spliced_forwards(
    clip: LoadedClip,
    dataset: ImageDataset,
    records: Sequence[Record],
    layer: str,
    batch_size: int = 256,
) -> Iterator[Forward]:
    """``block{N}``: a change is added to the CLS token after block N and the tower runs to the
    end; rows are positions in ``records`` (bad images are skipped, as in extraction)."""
    encoder = VisionActivations(clip.model, parse_layer(layer, clip.arch))
    for images, positions in iter_image_batches(
        dataset, records, clip.preprocess, clip.device, batch_size, desc="steering"
    ):
        residual = encoder.residual(images)
        finish = partial(_finish_with, encoder, residual)
        yield encoder.finish(residual), residual[:, 0], finish, positions.numpy()


def _finish_with(
    encoder: VisionActivations, residual: torch.Tensor, delta: torch.Tensor
) -> torch.Tensor:
    return encoder.finish(residual, splice=lambda cls: cls + delta)


class _Retrieval:
    """Running top-k neighbours of fixed query embeddings over a stream of gallery embeddings."""

    def __init__(self, queries: torch.Tensor, query_rows: np.ndarray, k: int) -> None:
        self.queries = F.normalize(queries, dim=-1)  # (S + 1, Q, d): clean first, then settings
        self.query_rows = torch.as_tensor(query_rows)
        self.k = k
        shape = (*self.queries.shape[:2], 0)
        self.sims = torch.empty(shape, device=queries.device)
        self.rows = torch.empty(shape, dtype=torch.long, device=queries.device)

    def update(self, gallery: torch.Tensor, rows: np.ndarray) -> None:
        rows_t = torch.as_tensor(rows, device=gallery.device)
        sims = self.queries @ F.normalize(gallery, dim=-1).T
        itself = self.query_rows.to(gallery.device)[:, None] == rows_t[None, :]
        sims = sims.masked_fill(itself[None], float("-inf"))
        sims = torch.cat([self.sims, sims], dim=-1)
        rows_all = torch.cat([self.rows, rows_t.expand(*sims.shape[:2], -1)], dim=-1)
        self.sims, keep = sims.topk(min(self.k, sims.shape[-1]), dim=-1)
        self.rows = rows_all.gather(-1, keep)


def _predict(emb: torch.Tensor, classes: torch.Tensor) -> torch.Tensor:
    return (LOGIT_SCALE * F.normalize(emb.float(), dim=-1) @ classes.T).softmax(-1)


def _tally(
    counts: dict[str, float], probs_before: torch.Tensor, probs_after: torch.Tensor, target: int
) -> None:
    before, after = probs_before.argmax(-1), probs_after.argmax(-1)
    was, now = before == target, after == target
    counts["n"] += len(before)
    counts["target_before"] += int(was.sum())
    counts["target_after"] += int(now.sum())
    counts["not_target_before"] += int((~was).sum())
    counts["flipped"] += int((~was & now).sum())
    counts["removed"] += int((was & ~now).sum())
    counts["changed"] += int((before != after).sum())
    counts["p_target_before"] += float(probs_before[:, target].sum())
    counts["p_target_after"] += float(probs_after[:, target].sum())


def steer(
    sae: SAE,
    settings: Sequence[Setting],
    forwards: Iterable[Forward],
    classes: np.ndarray,
    *,
    other_classes: np.ndarray | None = None,
    row_values: np.ndarray | None = None,
    n_queries: int = 64,
    k: int = 5,
) -> tuple[pl.DataFrame, pl.DataFrame]:
    """Apply every setting to every batch; return the per-setting table and the neighbours.

    ``classes`` are the class text embeddings the targets index; ``other_classes`` a second
    class set whose predictions should not move. ``row_values`` (the target factor's value per
    row) enables the retrieval columns; queries are the first ``n_queries`` rows of the first
    batch. The neighbours frame has one row per (setting, query, rank) with the neighbour's
    row before and after the edit.
    """
    dev = sae.W_dec.device
    cls = torch.as_tensor(classes, dtype=torch.float32, device=dev)
    other = None if other_classes is None else torch.as_tensor(other_classes, device=dev).float()
    counts = [dict.fromkeys(COUNTS, 0.0) for _ in settings]
    retrieval = None
    with torch.inference_mode():
        for clean, sae_input, edited, rows in forwards:
            codes = sae.encode(sae_input)
            p_clean = _predict(clean, cls)
            o_clean = None if other is None else _predict(clean, other).argmax(-1)
            q = min(n_queries, len(clean))
            queries = [clean[:q]]  # one setting's edited batch at a time; its queries are kept
            for c, s in zip(counts, settings, strict=True):
                emb = edited(latent_delta(sae, codes, s.latent, s.value))
                _tally(c, p_clean, _predict(emb, cls), s.target)
                if other is not None:
                    c["other_changed"] += int((_predict(emb, other).argmax(-1) != o_clean).sum())
                queries.append(emb[:q])
            if row_values is not None and retrieval is None:
                retrieval = _Retrieval(torch.stack(queries), rows[:q], k)
            if retrieval is not None:
                retrieval.update(clean, rows)
    if not counts or counts[0]["n"] == 0:
        raise ValueError("steering saw no images")
    table = _table(settings, counts, other is not None, retrieval, row_values)
    return table, _neighbours(settings, retrieval)


def _table(
    settings: Sequence[Setting],
    counts: list[dict[str, float]],
    with_other: bool,
    retrieval: _Retrieval | None,
    row_values: np.ndarray | None,
) -> pl.DataFrame:
    rows = []
    for i, (s, c) in enumerate(zip(settings, counts, strict=True)):
        n = c["n"]
        row = {
            "latent": s.latent,
            "target": s.target_name,
            "setting": s.setting,
            "value": s.value,
            "n": int(n),
            "target_before": c["target_before"] / n,
            "target_after": c["target_after"] / n,
            "flip_to_target": c["flipped"] / c["not_target_before"]
            if c["not_target_before"]
            else None,
            "target_removed": c["removed"] / c["target_before"] if c["target_before"] else None,
            "changed": c["changed"] / n,
            "other_changed": c["other_changed"] / n if with_other else None,
            "p_target_before": c["p_target_before"] / n,
            "p_target_after": c["p_target_after"] / n,
        }
        if retrieval is not None and row_values is not None:
            hits = row_values[retrieval.rows.cpu().numpy()] == s.target_name
            row["nn_target_before"] = float(hits[0].mean())
            row["nn_target_after"] = float(hits[i + 1].mean())
        rows.append(row)
    # Rates that are undefined (no target images, no second class set) are null, still floats.
    frame = pl.DataFrame(rows)
    rates = [c for c in frame.columns if c not in ("latent", "target", "setting", "value", "n")]
    return frame.with_columns(pl.col(rates).cast(pl.Float64))


def _neighbours(settings: Sequence[Setting], retrieval: _Retrieval | None) -> pl.DataFrame:
    schema = {
        "latent": pl.Int64,
        "setting": pl.String,
        "query_row": pl.Int64,
        "rank": pl.Int64,
        "row_before": pl.Int64,
        "row_after": pl.Int64,
    }
    if retrieval is None:
        return pl.DataFrame(schema=schema)
    found = retrieval.rows.cpu().numpy()  # (S + 1, Q, k)
    queries = retrieval.query_rows.numpy()
    _, n_q, k = found.shape
    frames = [
        pl.DataFrame(
            {
                "latent": np.full(n_q * k, s.latent),
                "setting": [s.setting] * (n_q * k),
                "query_row": np.repeat(queries, k),
                "rank": np.tile(np.arange(k), n_q),
                "row_before": found[0].reshape(-1),
                "row_after": found[i + 1].reshape(-1),
            },
            schema=schema,
        )
        for i, s in enumerate(settings)
    ]
    return pl.concat(frames)
