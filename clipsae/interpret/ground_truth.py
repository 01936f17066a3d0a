"""Latents checked against the factors that generated the images (shape, colour, background, ...).

For every factor value (``color=red``) the best single latent is used as a detector: the latent
and its threshold are chosen on the train split (maximal F1 of ``activation >= threshold``), and
F1 and AUROC are scored on the test split, so a detector is never graded on the images that
picked it. The same analysis runs on any "latent" source, which is how the SAE's gain is made
visible: raw CLIP dimensions (``raw_directions``, both signs) and random directions
(``random_directions``, as many as the SAE has latents) go through exactly the same code.

Memory stays bounded for any number of rows. Activations arrive in batches and only these are
kept:

- per (latent, value) sums of activations and of their squares (``L x V``, as for a mean), on
  the train split to shortlist candidates and on the test split for monosemanticity;
- for the ``n_candidates`` latents per value that separate it best (standardised mean
  difference), a ``n_bins`` histogram of their train activations split by the value, from which
  the F1 of every threshold is read (thresholds are bin edges);
- on the test split, only the chosen latent's activation per value (``N_test x V`` floats), which
  scikit-learn needs for an exact AUROC.

Shortlisting by mean difference is a heuristic: a latent outside the shortlist cannot be chosen.
With 32 candidates per value it picks the same detectors as scanning every latent on the
planted data of the tests (``n_candidates=n_latents`` is the exhaustive scan).

**AUROC of a sparse latent.** A TopK latent is 0 on most rows, and the ties at 0 count half, so
a latent that fires on a fraction r of a value's images (and on almost no others) has AUROC
about (1 + r) / 2, while a dense baseline direction ranks every row. When an SAE splits a colour
into conjunctions ("red circle", "red star"), its best single latent has a small r: a lower AUROC
than random directions is then what the metric says about single latents, not a bug; F1 and
recovery are the comparable numbers.

**Monosemantic** (``monosemanticity``): a latent's purity is the largest share of its total
test activation mass (the sum of its activations over all test images) that falls on the images
of one factor value, maximised over factors and values: purity = max_f max_v sum_{i: f_i = v}
a_i / sum_i a_i. Only latents active (> 0) on at least ``min_active`` (10) test images are
judged: one that fires on a single image would be pure whatever it encodes. A judged latent with
purity >= ``mono_threshold`` (0.8) is monosemantic, below it mixed; a latent active on fewer
images is rare, and one never active is dead. A conjunction ("red circles only") is
monosemantic by this rule: all its mass lies on red images. This purity needs the factors; the
MS score of ``clipsae.evaluate.monosemanticity`` needs none and measures something else (how
alike the images it fires on look).

**Naming accuracy**: a detector latent is named right when its vocabulary name carries the
factor value as words (``name_matches``); top-1 looks at its first name, top-3 at its first three.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass

import numpy as np
import polars as pl
import torch
from sklearn.metrics import precision_recall_fscore_support, roc_auc_score

Encoder = Callable[[torch.Tensor], torch.Tensor]
Batches = Callable[[], Iterable[np.ndarray]]

# Factors whose values are named with a marker word: "navy background" names background=navy,
# while a bare "navy" names a colour. A name with a marker never names a factor without one.
DEFAULT_MARKERS: dict[str, str] = {"background": "background"}
RECOVERED_F1 = 0.8
MONO_THRESHOLD = 0.8
MIN_ACTIVE = 10
DETECTOR_COLUMNS = (
    "method",
    "factor",
    "value",
    "latent",
    "threshold",
    "n_train",
    "n_test",
    "f1_train",
    "f1",
    "precision",
    "recall",
    "auroc",
)


@dataclass(frozen=True)
class Factors:
    """Factor values of a split's rows, as one flat list of (factor, value) pairs.

    ``codes`` (N, F) holds, per row and factor, the index of its value within that factor
    (-1 where the row has none); the flat value index is ``offsets[f] + code``.
    """

    names: tuple[str, ...]
    values: tuple[tuple[str, ...], ...]
    codes: np.ndarray

    @classmethod
    def from_frame(
        cls, frame: pl.DataFrame, factors: Sequence[str], values: Sequence[Sequence[str]] = ()
    ) -> Factors:
        """Code the ``factors`` columns of ``frame`` (one row per activation row, in order).

        ``values`` fixes each factor's value list (the train split's, so that the test split
        codes the same way); by default they are the sorted distinct values in ``frame``.
        """
        missing = [f for f in factors if f not in frame.columns]
        if missing:
            raise ValueError(f"factor columns {missing} are not in the index {frame.columns}")
        columns = [frame[f].cast(pl.String) for f in factors]
        if not values:
            values = [sorted(col.drop_nulls().unique().to_list()) for col in columns]
        codes = np.full((len(frame), len(factors)), -1, dtype=np.int64)
        for j, (col, known) in enumerate(zip(columns, values, strict=True)):
            lookup = {v: i for i, v in enumerate(known)}
            codes[:, j] = [lookup.get(v, -1) if v is not None else -1 for v in col.to_list()]
        return cls(tuple(factors), tuple(tuple(v) for v in values), codes)

    @property
    def offsets(self) -> np.ndarray:
        return np.concatenate([[0], np.cumsum([len(v) for v in self.values])[:-1]]).astype(int)

    @property
    def pairs(self) -> list[tuple[str, str]]:
        """(factor, value) in flat value order."""
        return [(f, v) for f, vals in zip(self.names, self.values, strict=True) for v in vals]

    def indicator(self, start: int, stop: int) -> torch.Tensor:
        """(rows, V) float 0/1: which values rows ``start:stop`` have."""
        codes = self.codes[start:stop]
        out = torch.zeros(len(codes), sum(len(v) for v in self.values))
        rows, cols = np.nonzero(codes >= 0)
        out[rows, self.offsets[cols] + codes[rows, cols]] = 1.0
        return out


def name_matches(
    entry: str, factor: str, value: str, markers: Mapping[str, str] = DEFAULT_MARKERS
) -> bool:
    """Whether one vocabulary name (``"navy background"``) names ``factor=value``.

    The value's words must all be among the name's words. A factor with a marker word needs the
    marker too; a factor without one is not named by a name that carries any marker, so ``red``
    is the colour red and ``red background`` only the background.
    """
    words = set(entry.lower().split())
    if not set(value.lower().split()) <= words:
        return False
    marker = markers.get(factor)
    if marker is not None:
        return marker in words
    return not words & {m.lower() for m in markers.values()}


def raw_directions(d: int) -> torch.Tensor:
    """Each embedding dimension as a latent, both signs: rows ``e_0..e_{d-1}, -e_0..-e_{d-1}``."""
    eye = torch.eye(d)
    return torch.cat([eye, -eye])


def random_directions(n: int, d: int, seed: int) -> torch.Tensor:
    """``n`` seeded random unit directions in ``d`` dimensions (isotropic, so sign-symmetric)."""
    rows = torch.randn(n, d, generator=torch.Generator().manual_seed(seed))
    return rows / rows.norm(dim=1, keepdim=True)


def projection_encoder(directions: torch.Tensor, mean: torch.Tensor) -> Encoder:
    """Latents of a baseline: ReLU of the projection of the centred activation on each direction.

        Centring on the train mean makes "above zero" mean "more than usual", as an SAE latent's
        firing does; the ReLU puts baseline activations on the same non-negative footing as SAE
        codes for the activation-mass purity. Above the mean the ranking is unchanged; below it the
    rows tie at 0, which an ``activation >= threshold`` detector never needs to tell apart.
    """

    def encode(x: torch.Tensor) -> torch.Tensor:
        return torch.relu((x - mean.to(x)) @ directions.to(x).T)

    return encode


def mean_activation(batches: Iterable[np.ndarray]) -> torch.Tensor:
    """Mean row of a batch stream (float64 sums, so long streams do not drift)."""
    total, n = None, 0
    for batch in batches:
        x = torch.as_tensor(np.asarray(batch), dtype=torch.float64)
        total = x.sum(0) if total is None else total + x.sum(0)
        n += len(x)
    if total is None:
        raise ValueError("mean_activation got no rows")
    return (total / n).float()


class _Moments:
    """Per (latent, value) activation sums and sums of squares, and per-latent totals."""

    def __init__(self) -> None:
        self.n = 0
        self.count = self.s1 = self.s2 = self.t1 = self.t2 = self.active = None
        self.lo = self.hi = None

    def update(self, acts: torch.Tensor, onehot: torch.Tensor) -> None:
        a, y = acts.double(), onehot.double()
        parts = (y.sum(0), a.T @ y, (a * a).T @ y, a.sum(0), (a * a).sum(0), (a > 0).sum(0))
        if self.count is None:
            self.count, self.s1, self.s2, self.t1, self.t2, self.active = parts
            self.lo, self.hi = acts.min(0).values, acts.max(0).values
        else:
            names = ("count", "s1", "s2", "t1", "t2", "active")
            for name, part in zip(names, parts, strict=True):
                setattr(self, name, getattr(self, name) + part)
            self.lo = torch.minimum(self.lo, acts.min(0).values)
            self.hi = torch.maximum(self.hi, acts.max(0).values)
        self.n += len(acts)

    def separation(self) -> torch.Tensor:
        """(L, V) standardised mean difference of each latent: a value's rows against the rest."""
        n_in = self.count.clamp_min(1)
        n_out = (self.n - self.count).clamp_min(1)
        mean_in, mean_out = self.s1 / n_in, (self.t1[:, None] - self.s1) / n_out
        var_in = (self.s2 / n_in - mean_in**2).clamp_min(0)
        var_out = ((self.t2[:, None] - self.s2) / n_out - mean_out**2).clamp_min(0)
        return (mean_in - mean_out) / torch.sqrt((var_in + var_out) / 2 + 1e-12)


def _encoded(encode: Encoder, batches: Iterable[np.ndarray]) -> Iterable[tuple[int, torch.Tensor]]:
    """(first row, codes) per batch, codes as float32 on the CPU."""
    start = 0
    with torch.inference_mode():
        for batch in batches:
            codes = encode(torch.as_tensor(np.asarray(batch, dtype=np.float32))).float().cpu()
            yield start, codes
            start += len(codes)


def _check_rows(n_rows: int, factors: Factors, split: str) -> None:
    if n_rows != len(factors.codes):
        raise ValueError(
            f"{split} split: {n_rows} activation rows but factor values for {len(factors.codes)}"
        )


_HIST_ENTRIES = 1 << 21


def _histogram_thresholds(
    encode: Encoder,
    train: Batches,
    factors: Factors,
    candidates: torch.Tensor,
    moments: _Moments,
    n_bins: int,
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Best (latent, threshold, train F1) per value among its candidates, from binned counts.

    Bin 0 holds the rows at the latent's train minimum (the zeros of a sparse code, the ReLU
    floor of a baseline), so "fires at all" is always a threshold: linear bins from the minimum
    lumped a heavy-tailed latent's small firing values in with its zeros, and a latent that
    fires exactly on one value scored F1 0.72 instead of 1. Bins 1.. are linear over
    (minimum, maximum]; a threshold is a bin's lower edge (bin 1's is the next float above the
    minimum) and the detector is ``activation >= threshold``.
    """
    n_values, n_cand = candidates.shape
    cols = candidates.reshape(-1)
    lo, hi = moments.lo[cols], moments.hi[cols]
    width = torch.where(hi > lo, hi - lo, torch.ones_like(hi)) / (n_bins - 1)
    value_of_col = torch.arange(n_values).repeat_interleave(n_cand)
    pos = torch.zeros(len(cols) * n_bins, dtype=torch.float64)
    total = torch.zeros(len(cols) * n_bins, dtype=torch.float64)
    offset = torch.arange(len(cols)) * n_bins
    # Rows per histogram update: bounds the (rows, columns) temporaries to ~2M entries each.
    step = max(1, _HIST_ENTRIES // len(cols))
    for first, codes in _encoded(encode, train()):
        for i in range(0, len(codes), step):
            a = codes[i : i + step, cols]
            above = ((a - lo) / width).floor().clamp(0, n_bins - 2).long() + 1
            bins = (torch.where(a > lo, above, 0) + offset).reshape(-1)
            start = first + i
            weights = factors.indicator(start, start + len(a))[:, value_of_col].reshape(-1)
            total += torch.bincount(bins, minlength=len(total)).double()
            pos += torch.bincount(bins, weights.double(), len(pos))
    # Rows with activation >= a bin's lower edge: counts from that bin upwards.
    tp = pos.view(n_values, n_cand, n_bins).flip(-1).cumsum(-1).flip(-1)
    predicted = total.view(n_values, n_cand, n_bins).flip(-1).cumsum(-1).flip(-1)
    positives = moments.count[:, None, None]
    f1 = torch.where(positives > 0, 2 * tp / (positives + predicted).clamp_min(1), 0.0)
    best = f1.view(n_values, -1).argmax(1)
    which, b = best // n_bins, best % n_bins
    chosen = candidates[torch.arange(n_values), which]
    floor = moments.lo[chosen]
    bin_width = width.view(n_values, n_cand)[torch.arange(n_values), which]
    just_above = torch.nextafter(floor, torch.full_like(floor, torch.inf))
    threshold = torch.where(b == 1, just_above, floor + (b - 1).clamp_min(0) * bin_width)
    return chosen.numpy(), threshold.numpy(), f1.view(n_values, -1).max(1).values.numpy()


def _score_test(
    encode: Encoder,
    test: Batches,
    factors: Factors,
    latents: np.ndarray,
    thresholds: np.ndarray,
) -> tuple[list[dict], _Moments]:
    """Test F1, precision, recall and AUROC of each value's detector, and the test moments."""
    moments = _Moments()
    scores = []
    for start, codes in _encoded(encode, test()):
        moments.update(codes, factors.indicator(start, start + len(codes)))
        scores.append(codes[:, latents].numpy())
    _check_rows(moments.n, factors, "test")
    a = np.concatenate(scores)
    y = factors.indicator(0, len(a)).numpy().astype(bool)
    rows = []
    for v in range(y.shape[1]):
        truth, pred = y[:, v], a[:, v] >= thresholds[v]
        both = 0 < truth.sum() < len(truth)
        precision, recall, f1, _ = precision_recall_fscore_support(
            truth, pred, average="binary", zero_division=0.0
        )
        rows.append(
            {
                "n_test": int(truth.sum()),
                "f1": float(f1),
                "precision": float(precision),
                "recall": float(recall),
                "auroc": float(roc_auc_score(truth, a[:, v])) if both else float("nan"),
            }
        )
    return rows, moments


def monosemanticity(
    moments: _Moments, threshold: float = MONO_THRESHOLD, min_active: int = MIN_ACTIVE
) -> dict:
    """Counts of monosemantic, mixed, rare and dead latents (module docstring); the fraction
    is of the judged latents (monosemantic + mixed)."""
    mass = moments.t1
    judged = moments.active >= max(min_active, 1)
    purity = (moments.s1 / mass.clamp_min(1e-30)[:, None]).max(1).values
    mono = judged & (purity >= threshold)
    return {
        "n_latents": len(mass),
        "n_dead": int((moments.active == 0).sum()),
        "n_rare": int(((moments.active > 0) & ~judged).sum()),
        "n_monosemantic": int(mono.sum()),
        "n_mixed": int((judged & ~mono).sum()),
        "monosemantic_fraction": float(mono.sum() / judged.sum()) if judged.any() else 0.0,
    }


def detectors(
    encode: Encoder,
    train: Batches,
    test: Batches,
    factors_train: Factors,
    factors_test: Factors,
    *,
    n_candidates: int = 32,
    n_bins: int = 256,
    mono_threshold: float = MONO_THRESHOLD,
    min_active: int = MIN_ACTIVE,
) -> tuple[pl.DataFrame, dict]:
    """Best single-latent detector per factor value, and the latents' monosemanticity.

    ``train`` and ``test`` return a fresh batch stream on every call (the train split is read
    twice: moments, then histograms of the shortlisted latents); their rows line up with the
    ``Factors`` rows. Returns one row per (factor, value) with the columns of
    ``DETECTOR_COLUMNS`` (less ``method``) and the ``monosemanticity`` counts.
    """
    if factors_train.values != factors_test.values:
        raise ValueError("train and test factors must code the same values (pass values=)")
    moments = _Moments()
    for start, codes in _encoded(encode, train()):
        moments.update(codes, factors_train.indicator(start, start + len(codes)))
    _check_rows(moments.n, factors_train, "train")
    n_cand = min(n_candidates, len(moments.t1))
    candidates = moments.separation().T.topk(n_cand, dim=1).indices
    latents, thresholds, f1_train = _histogram_thresholds(
        encode, train, factors_train, candidates, moments, n_bins
    )
    scored, test_moments = _score_test(encode, test, factors_test, latents, thresholds)
    frame = pl.DataFrame(
        [
            {
                "factor": factor,
                "value": value,
                "latent": int(latents[v]),
                "threshold": float(thresholds[v]),
                "n_train": int(moments.count[v]),
                "f1_train": float(f1_train[v]),
                **scored[v],
            }
            for v, (factor, value) in enumerate(factors_train.pairs)
        ]
    )
    return frame.select(DETECTOR_COLUMNS[1:]), monosemanticity(
        test_moments, mono_threshold, min_active
    )


def add_naming(
    table: pl.DataFrame, names: pl.DataFrame | None, markers: Mapping[str, str] = DEFAULT_MARKERS
) -> pl.DataFrame:
    """Add ``name`` (the detector latent's ``top_en``), ``name_top1`` and ``name_top3``.

    ``names`` is a naming table (``latent``, ``top_en`` as ``"a; b; c"``); latents it lacks, or
    every latent when it is None, get null columns.
    """
    lookup = {}
    if names is not None:
        lookup = dict(zip(names["latent"].to_list(), names["top_en"].to_list(), strict=True))
    rows = []
    for factor, value, latent in table.select("factor", "value", "latent").iter_rows():
        top = lookup.get(latent)
        entries = [e.strip() for e in top.split(";")] if top is not None else []
        hits = [name_matches(e, factor, value, markers) for e in entries[:3]]
        rows.append(
            {
                "name": top,
                "name_top1": bool(hits[0]) if hits else None,
                "name_top3": any(hits) if hits else None,
            }
        )
    schema = {"name": pl.String, "name_top1": pl.Boolean, "name_top3": pl.Boolean}
    return pl.concat([table, pl.DataFrame(rows, schema=schema)], how="horizontal")


def summarise(table: pl.DataFrame, recovered_f1: float = RECOVERED_F1) -> dict:
    """Per method: share of values recovered (test F1 >= ``recovered_f1``), overall and per
    factor, mean F1 and AUROC, and naming accuracy over all values and over recovered ones."""
    out = {}
    for (method,), rows in table.group_by("method", maintain_order=True):
        recovered = rows.filter(pl.col("f1") >= recovered_f1)
        entry = {
            "n_values": len(rows),
            "recovered_fraction": len(recovered) / len(rows),
            "recovered_by_factor": {
                factor: float((group["f1"] >= recovered_f1).mean())
                for (factor,), group in rows.group_by("factor", maintain_order=True)
            },
            "mean_f1": float(rows["f1"].mean()),
            "mean_auroc": rows["auroc"].fill_nan(None).mean(),
        }
        if "name_top1" in rows.columns:
            for label, part in (("", rows), ("_recovered", recovered)):
                named = part.drop_nulls("name_top1")
                for k in ("top1", "top3"):
                    acc = float(named[f"name_{k}"].mean()) if len(named) else None
                    entry[f"naming_{k}{label}"] = acc
        out[method] = entry
    return out


def ground_truth(
    methods: Mapping[str, Encoder],
    train: Batches,
    test: Batches,
    factors_train: Factors,
    factors_test: Factors,
    *,
    names: Mapping[str, pl.DataFrame] | None = None,
    markers: Mapping[str, str] = DEFAULT_MARKERS,
    n_candidates: int = 32,
    n_bins: int = 256,
    mono_threshold: float = MONO_THRESHOLD,
    min_active: int = MIN_ACTIVE,
    recovered_f1: float = RECOVERED_F1,
) -> tuple[pl.DataFrame, dict]:
    """``detectors`` for each latent source in ``methods`` (e.g. ``sae``, ``clip``, ``random``).

    Returns one row per (method, factor, value), named where ``names`` has that method's naming
    table, and a summary per method: ``summarise`` plus the ``latents`` monosemanticity counts.
    """
    tables, latents = [], {}
    for method, encode in methods.items():
        table, latents[method] = detectors(
            encode,
            train,
            test,
            factors_train,
            factors_test,
            n_candidates=n_candidates,
            n_bins=n_bins,
            mono_threshold=mono_threshold,
            min_active=min_active,
        )
        table = table.with_columns(method=pl.lit(method)).select(DETECTOR_COLUMNS)
        tables.append(add_naming(table, (names or {}).get(method), markers))
    table = pl.concat(tables)
    summary = summarise(table, recovered_f1)
    for method, counts in latents.items():
        summary[method]["latents"] = counts
    settings = {"n_candidates": n_candidates, "n_bins": n_bins}
    settings |= {"mono_threshold": mono_threshold, "min_active": min_active}
    return table, {"methods": summary, "recovered_f1": recovered_f1, **settings}
