"""SAE trainer: Adam or AdamW with a warm-up and decay sized as fractions of the run, unit-norm
decoder, AuxK dead-latent tracking, periodic single-file checkpoints and exact resume.

Everything that changes during training (weights, Adam moments, dead-latent counters, firing counts,
the log so far) lives in one ``checkpoint.safetensors`` replaced atomically, and the batch order is
a pure function of ``(seed, epoch)``. A run killed and restarted with the same arguments therefore
continues bit-for-bit where the last checkpoint left it (on CPU, where kernels are deterministic).
"""

from __future__ import annotations

import json
import logging
import math
import time
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import numpy as np
import polars as pl
import torch
from safetensors import safe_open
from tqdm import tqdm

from clipsae.activations.shards import ActivationStore
from clipsae.runtime.device import pick_device
from clipsae.sae.base import SAE
from clipsae.sae.config import SAEConfig, TrainConfig, check_compatible
from clipsae.sae.data import (
    Activations,
    BatchSource,
    MemoryPlan,
    check_inputs,
    release_freed_memory,
)
from clipsae.sae.io import atomic_save_tensors, save_sae
from clipsae.sae.metrics import reconstruction_metrics
from clipsae.sae.zoo import build_sae

log = logging.getLogger(__name__)

CHECKPOINT_FILE = "checkpoint.safetensors"
LOG_FILE = "log.parquet"
LOG_COLUMNS = ("step", "loss", "mse", "aux_loss", "l0", "lr", "grad_norm", "val_fvu")
BIASES = ("b_enc", "b_dec")  # every architecture's, stepped at ``bias_lr_factor`` x lr


def lr_at(step: int, total_steps: int, tcfg: TrainConfig) -> float:
    """Learning rate of optimiser step ``step`` (0-based) of ``total_steps``: a linear warm-up
    over ``warmup_frac`` of the steps that reaches ``lr`` on its last step, ``lr`` until the last
    ``decay_frac`` of the steps (never before the warm-up ends), then the chosen decay towards
    ``lr * lr_end_frac``. Step counts are rounded, and a warm-up of a non-zero fraction lasts at
    least one step."""
    warmup = max(1, round(tcfg.warmup_frac * total_steps)) if tcfg.warmup_frac > 0 else 0
    if step < warmup:
        return tcfg.lr * (step + 1) / warmup
    decay_start = max(warmup, total_steps - round(tcfg.decay_frac * total_steps))
    if step < decay_start:
        return tcfg.lr
    progress = (step - decay_start) / max(1, total_steps - decay_start)
    end = tcfg.lr * tcfg.lr_end_frac
    if tcfg.lr_schedule == "cosine":
        return end + (tcfg.lr - end) * 0.5 * (1 + math.cos(math.pi * progress))
    return tcfg.lr + (end - tcfg.lr) * progress


def geometric_median(points: torch.Tensor, iters: int = 200, tol: float = 1e-7) -> torch.Tensor:
    """Weiszfeld's algorithm: a centre that, unlike the mean, is not dragged by outlier rows.

    Works on one float64 copy of ``points``; the distances are taken a quarter of the rows at a
    time, so the temporaries stay under one float32 size of ``points`` (``STATS_COPIES``)."""
    points = points.double()
    chunk = max(1, -(-len(points) // 4))
    median = points.mean(dim=0)
    for _ in range(iters):
        distances = torch.cat([(part - median).norm(dim=1) for part in points.split(chunk)])
        weights = 1.0 / distances.clamp_min(1e-12)
        new = (weights @ points) / weights.sum()
        moved = float((new - median).norm())
        median = new
        if moved <= tol * max(float(median.norm()), 1.0):
            break
    return median.float()


def _init_sae(
    cfg: SAEConfig, tcfg: TrainConfig, source: BatchSource, stats_rows: int | None = None
) -> SAE:
    """Fresh SAE whose normalisation constant and decoder bias come from a sample of the data
    (``stats_rows`` rows, default ``tcfg.stats_rows``; ``MemoryPlan`` may cut it to fit the
    cap). The sample is scaled in place, so at most ``STATS_COPIES`` float32 sizes of it are
    alive at once (the float64 copy of ``geometric_median``)."""
    rows = tcfg.stats_rows if stats_rows is None else stats_rows
    sample = torch.from_numpy(source.sample(rows, np.random.default_rng(tcfg.seed)))
    scale = 1.0
    if tcfg.normalize == "mean_norm":
        chunk = max(1, -(-len(sample) // 4))
        sq_norms = torch.cat([part.double().pow(2).sum(dim=1) for part in sample.split(chunk)])
        scale = math.sqrt(cfg.d_in / float(sq_norms.mean()))
    cfg = replace(cfg, input_scale=scale)
    sae = build_sae(cfg, generator=torch.Generator().manual_seed(tcfg.seed))
    with torch.no_grad():
        if tcfg.b_dec_init == "mean":
            sae.b_dec.copy_(sample.mean(dim=0) * scale)
        sample.mul_(scale)
        if tcfg.b_dec_init == "geometric_median":
            sae.b_dec.copy_(geometric_median(sample))
    if tcfg.dict_init == "data":
        _init_dictionary_from_data(sae, sample, tcfg.seed)
    return sae


@torch.no_grad()
def _init_dictionary_from_data(sae: SAE, rows: torch.Tensor, seed: int) -> None:
    """Point latents at distinct rows (training units), centred on ``b_dec``; latents beyond the
    number of rows keep their random initialisation rather than start as clones, which would
    stay clones. Only for models with ``k`` (``check_compatible``)."""
    n = min(sae.cfg.d_sae, len(rows))
    picked = rows[torch.randperm(len(rows), generator=torch.Generator().manual_seed(seed))[:n]]
    centred = picked - sae.b_dec
    directions = centred / centred.norm(dim=1, keepdim=True).clamp_min(1e-12)
    sae.resample(torch.arange(n), directions, enc_norm=1.0 / sae.cfg.k)


@dataclass
class _State:
    """What a checkpoint must restore besides the weights and Adam moments."""

    step: int
    steps_since_fired: torch.Tensor
    fire_counts: torch.Tensor
    train_seconds: float = 0.0
    rows: list[dict[str, float]] = field(default_factory=list)


def _adam_tensors(
    opt: torch.optim.Optimizer, names: dict[torch.nn.Parameter, str]
) -> dict[str, Any]:
    return {
        f"opt.{names[p]}.{key}": value
        for p, state in opt.state.items()
        for key, value in state.items()
    }


def _save_checkpoint(
    path: Path, sae: SAE, opt: torch.optim.Optimizer, st: _State, tcfg: TrainConfig
) -> None:
    names = {p: n for n, p in sae.named_parameters()}
    tensors = {f"model.{k}": v for k, v in sae.state_dict().items()}
    tensors |= _adam_tensors(opt, names)
    tensors |= {"steps_since_fired": st.steps_since_fired, "fire_counts": st.fire_counts}
    tensors |= {
        f"log.{c}": torch.tensor([r[c] for r in st.rows], dtype=torch.float64) for c in LOG_COLUMNS
    }
    meta = {
        "step": st.step,
        "train_seconds": st.train_seconds,
        "sae_cfg": sae.cfg.to_dict(),
        "train_cfg": tcfg.to_dict(),
    }
    atomic_save_tensors(tensors, path, metadata={"state": json.dumps(meta)})


def _load_checkpoint(
    path: Path, cfg: SAEConfig, tcfg: TrainConfig, device: torch.device
) -> tuple[SAE, torch.optim.Optimizer, _State]:
    with safe_open(path, framework="pt") as fh:
        meta = json.loads(fh.metadata()["state"])
        tensors = {k: fh.get_tensor(k) for k in fh.keys()}  # noqa: SIM118 - safe_open has no iter
    saved_cfg = SAEConfig.from_dict(meta["sae_cfg"])
    same_model = saved_cfg == replace(cfg, input_scale=saved_cfg.input_scale)
    if not same_model or meta["train_cfg"] != json.loads(tcfg.to_json()):
        raise ValueError(
            f"{path} was written by a run with other settings; delete it to start afresh"
        )
    sae = build_sae(saved_cfg)
    sae.load_state_dict({k[6:]: v for k, v in tensors.items() if k.startswith("model.")})
    sae.to(device)
    opt = _make_optimizer(sae, tcfg)
    for name, p in sae.named_parameters():
        prefix = f"opt.{name}."
        state = {k[len(prefix) :]: v for k, v in tensors.items() if k.startswith(prefix)}
        if state:
            opt.state[p] = {k: (v if k == "step" else v.to(device)) for k, v in state.items()}
    n_rows = len(tensors["log.step"])
    rows = [{c: _log_value(c, tensors[f"log.{c}"][i]) for c in LOG_COLUMNS} for i in range(n_rows)]
    st = _State(
        step=meta["step"],
        steps_since_fired=tensors["steps_since_fired"].to(device),
        fire_counts=tensors["fire_counts"].to(device),
        train_seconds=meta["train_seconds"],
        rows=rows,
    )
    return sae, opt, st


def _log_value(column: str, value: torch.Tensor) -> float | int:
    return int(value) if column == "step" else float(value)


def _make_optimizer(sae: SAE, tcfg: TrainConfig) -> torch.optim.Optimizer:
    """Adam or AdamW; weight decay on the weight matrices only, since decaying biases and
    thresholds would pull them towards zero for no regularising gain. Each group's ``lr_scale``
    is the factor ``_run_steps`` applies to the scheduled ``lr``: the architecture's
    ``bias_lr_factor`` for the encoder and decoder biases, 1 for the rest."""
    named = dict(sae.named_parameters())
    groups = [
        {"params": [p for p in named.values() if p.ndim >= 2], "weight_decay": tcfg.weight_decay},
        {"params": [p for n, p in named.items() if p.ndim < 2 and n not in BIASES]},
        {"params": [named[n] for n in BIASES], "lr_scale": sae.cfg.bias_lr_factor()},
    ]
    groups = [{"weight_decay": 0.0, "lr_scale": 1.0, **g} for g in groups if g["params"]]
    for group in groups:
        group["lr"] = tcfg.lr * group["lr_scale"]
    kind = torch.optim.AdamW if tcfg.optimizer == "adamw" else torch.optim.Adam
    return kind(groups, betas=tcfg.adam_betas, eps=tcfg.adam_eps, foreach=True)


def _write_log(rows: list[dict[str, float]], path: Path) -> None:
    frame = pl.DataFrame(
        {c: [r[c] for r in rows] for c in LOG_COLUMNS},
        schema={c: pl.Int64 if c == "step" else pl.Float64 for c in LOG_COLUMNS},
    ).with_columns(pl.col("val_fvu").fill_nan(None))
    tmp = path.with_name(path.name + ".tmp")
    frame.write_parquet(tmp)
    tmp.replace(path)


def _val_fvu(sae: SAE, rows: np.ndarray | None, tcfg: TrainConfig) -> float:
    if rows is None:
        return float("nan")
    batches = (rows[i : i + tcfg.batch_size] for i in range(0, len(rows), tcfg.batch_size))
    sae.eval()
    fvu = float(reconstruction_metrics(sae, batches, dense=False)["fvu"])
    sae.train()
    return fvu


def _calibrate(
    sae: SAE, source: BatchSource, tcfg: TrainConfig, device: torch.device, stats_rows: int
) -> None:
    """Let the final model fit its inference settings (``SAE.calibrate``) on up to
    ``stats_rows`` training rows in shuffled, training-sized batches (``sample`` returns them in
    file order, where neighbouring rows may come from one image or text)."""
    rng = np.random.default_rng(tcfg.seed)
    sample = source.sample(stats_rows, rng)
    rows = torch.from_numpy(sample[rng.permutation(len(sample))])
    del sample
    sae.eval()
    sae.calibrate(chunk.to(device) for chunk in rows.split(tcfg.batch_size))


def _clip_gradient(params: list[torch.nn.Parameter], max_norm: float | None, d_in: int) -> float:
    """Clip the gradient at ``max_norm`` on the scale of the squared error summed over the
    ``d_in`` dimensions, and return its norm on that scale before the clip.

    The models return element-mean losses, whose gradients are ``d_in`` times smaller than
    those of the summed loss that Gao et al. and dictionary_learning clip at 1; clipping ours at
    ``max_norm / d_in`` is the same clip (Adam does not see the gradient's overall scale), and a
    bound given on our scale would never act."""
    if max_norm is None:
        grads = [p.grad for p in params if p.grad is not None]
        return float(torch.nn.utils.get_total_norm(grads)) * d_in
    return float(torch.nn.utils.clip_grad_norm_(params, max_norm / d_in)) * d_in


def _resample_due(step: int, total: int, tcfg: TrainConfig) -> bool:
    """Resampling stops after ``resample_until`` of training so the last latents re-pointed have
    time to settle before the model is saved."""
    every = tcfg.resample_every
    return every is not None and step % every == 0 and step <= tcfg.resample_until * total


@torch.no_grad()
def _resample_dead(
    sae: SAE, opt: torch.optim.Optimizer, st: _State, x: torch.Tensor, tcfg: TrainConfig
) -> None:
    """Re-point dead latents at rows of the batch drawn with probability proportional to the
    square of their squared reconstruction error (Bricken et al. 2023), at most one latent per
    row: two latents started as clones would stay clones."""
    dead = torch.nonzero(st.steps_since_fired >= tcfg.dead_steps_threshold).flatten()
    if len(dead) == 0 or len(dead) == sae.cfg.d_sae:
        return
    centred = x * sae.scale - sae.b_dec
    weights = (x - sae(x)).pow(2).sum(dim=1).pow(2)
    n = min(len(dead), int((weights > 0).sum()))
    gen = torch.Generator(device=x.device).manual_seed(tcfg.seed * 1_000_003 + st.step)
    rows = torch.multinomial(weights, n, replacement=False, generator=gen)
    latents = dead[torch.randperm(len(dead), generator=gen, device=x.device)[:n]]
    alive = torch.ones(sae.cfg.d_sae, dtype=torch.bool, device=x.device)
    alive[dead] = False
    enc_norm = float(sae.W_enc[:, alive].norm(dim=0).mean()) * tcfg.resample_enc_scale
    directions = centred[rows]
    sae.resample(
        latents, directions / directions.norm(dim=1, keepdim=True).clamp_min(1e-12), enc_norm
    )
    _reset_adam_rows(sae, opt, latents)
    st.steps_since_fired[latents] = 0


def _reset_adam_rows(sae: SAE, opt: torch.optim.Optimizer, latents: torch.Tensor) -> None:
    """Forget the Adam moments of re-pointed latents: moments of their old direction would
    otherwise drive the first updates of the new one."""
    params = dict(sae.named_parameters())
    for name, axis in sae.latent_axes.items():
        state = opt.state.get(params[name], {})
        for key in ("exp_avg", "exp_avg_sq"):
            if key in state:
                state[key].index_fill_(axis, latents, 0.0)


def train_sae(
    train: Activations,
    cfg: SAEConfig,
    tcfg: TrainConfig,
    out_dir: Path,
    val: Activations | None = None,
    device: str | torch.device | None = None,
    *,
    stop_after: int | None = None,
    extra: dict[str, Any] | None = None,
) -> dict[str, Any]:
    """Train (or resume training) an SAE and save it under ``out_dir``.

    Writes ``sae_weights.safetensors``, ``cfg.json`` (with the recipe and ``extra``),
    ``sparsity.safetensors`` (firing frequencies over the last epoch) and ``log.parquet``. If
    ``out_dir`` holds a checkpoint of the same settings, training resumes from it. ``stop_after``
    ends the call after that many total steps, leaving a checkpoint (what a kill would leave,
    minus the steps since the last periodic one). Returns a summary with ``completed``, ``steps``,
    ``train_seconds`` and ``samples_per_second``.
    """
    check_compatible(cfg, tcfg)
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    device = pick_device(device)
    plan = MemoryPlan.from_cap(
        tcfg.max_in_memory_bytes,
        train.d if isinstance(train, ActivationStore) else train.shape[-1],
        tcfg.batch_size,
        shuffle_buffer_rows=tcfg.shuffle_buffer_rows,
        val_rows=tcfg.val_rows,
        stats_rows=tcfg.stats_rows,
    )
    _log_plan(plan)
    source = BatchSource(train, plan.buffer_rows, plan.in_memory_bytes)
    # Validation only ever samples ``val_rows`` rows: a store is read through its memory map.
    val_source = BatchSource(val, plan.buffer_rows, 0) if val is not None else None
    check_inputs(train, val)
    if source.d != cfg.d_in:
        raise ValueError(f"training rows have width {source.d}, the SAE expects d_in={cfg.d_in}")
    if val_source is not None and val_source.d != source.d:
        raise ValueError(f"validation rows have width {val_source.d}, training rows {source.d}")
    ckpt = out_dir / CHECKPOINT_FILE
    if ckpt.exists():
        sae, opt, st = _load_checkpoint(ckpt, cfg, tcfg, device)
        log.info("resuming %s from step %d", ckpt, st.step)
    else:
        sae = _init_sae(cfg, tcfg, source, plan.stats_rows).to(device)
        release_freed_memory()  # the statistics sample and its copies
        opt = _make_optimizer(sae, tcfg)
        zeros = torch.zeros(cfg.d_sae, dtype=torch.int64, device=device)
        st = _State(step=0, steps_since_fired=zeros, fire_counts=zeros.clone())
    per_epoch = source.steps_per_epoch(tcfg.batch_size)
    total = per_epoch * tcfg.epochs
    last = total if stop_after is None else min(total, stop_after)
    _run_steps(sae, opt, st, source, val_source, tcfg, plan, last, out_dir, device)
    rows_seen = (st.step) * min(tcfg.batch_size, source.n_rows)
    summary = {
        "completed": st.step >= total,
        "steps": st.step,
        "train_seconds": st.train_seconds,
        "samples_per_second": rows_seen / st.train_seconds
        if st.train_seconds > 0
        else float("nan"),
    }
    if st.step < total:
        _save_checkpoint(ckpt, sae, opt, st, tcfg)
        return summary
    _calibrate(sae, source, tcfg, device, plan.stats_rows)
    last_epoch_rows = per_epoch * min(tcfg.batch_size, source.n_rows)
    save_sae(
        sae,
        out_dir,
        firing_frequency=st.fire_counts.double().cpu() / last_epoch_rows,
        extra={"train": tcfg.to_dict(), **(extra or {})},
    )
    _write_log(st.rows, out_dir / LOG_FILE)
    ckpt.unlink(missing_ok=True)
    return summary


def _log_plan(plan: MemoryPlan) -> None:
    log.info(
        "memory cap %d MiB: training rows in memory up to %d MiB, else a shuffle buffer of %d "
        "rows; %d validation rows; %d rows for data statistics",
        plan.cap >> 20,
        plan.in_memory_bytes >> 20,
        plan.buffer_rows,
        plan.val_rows,
        plan.stats_rows,
    )
    if not plan.fits:
        log.warning(
            "max_in_memory_bytes (%d bytes) is below one batch of rows for each buffer: "
            "training will hold more activation rows than that",
            plan.cap,
        )


def _run_steps(
    sae: SAE,
    opt: torch.optim.Optimizer,
    st: _State,
    source: BatchSource,
    val: BatchSource | None,
    tcfg: TrainConfig,
    plan: MemoryPlan,
    last: int,
    out_dir: Path,
    device: torch.device,
) -> None:
    """Steps ``st.step`` to ``last``: one optimiser step, logging and checkpointing per batch."""
    per_epoch = source.steps_per_epoch(tcfg.batch_size)
    total = per_epoch * tcfg.epochs
    params = list(sae.parameters())
    val_rows = val.sample(plan.val_rows, np.random.default_rng(tcfg.seed)) if val else None
    sae.train()
    bar = tqdm(total=total, initial=st.step, desc="train-sae", unit="step")
    while st.step < last:
        epoch, offset = divmod(st.step, per_epoch)
        for batch in source.epoch(epoch, tcfg.batch_size, tcfg.seed, skip=offset):
            started = time.perf_counter()
            x = torch.from_numpy(batch).to(device)
            lr = lr_at(st.step, total, tcfg)
            for group in opt.param_groups:
                group["lr"] = lr * group["lr_scale"]
            dead = st.steps_since_fired >= tcfg.dead_steps_threshold
            out = sae.train_loss(x, dead, (st.step + 1) / total)
            opt.zero_grad(set_to_none=True)
            out.loss.backward()
            loss = float(out.loss.detach())
            if tcfg.unit_norm_decoder:
                sae.remove_parallel_grad()
            grad_norm = _clip_gradient(params, tcfg.grad_clip, sae.cfg.d_in)
            opt.step()
            if tcfg.unit_norm_decoder:
                sae.normalize_decoder()
            st.steps_since_fired += 1
            st.steps_since_fired[out.fire_counts > 0] = 0
            if st.step % per_epoch == 0:
                st.fire_counts.zero_()
            st.fire_counts += out.fire_counts
            st.step += 1
            if _resample_due(st.step, total, tcfg):
                _resample_dead(sae, opt, st, x, tcfg)
            st.train_seconds += time.perf_counter() - started
            validate = st.step % tcfg.val_every == 0 or st.step == total
            val_fvu = _val_fvu(sae, val_rows, tcfg) if validate else float("nan")
            st.rows.append(
                {
                    "step": st.step,
                    "loss": loss,
                    "mse": float(out.mse.detach()),
                    "aux_loss": float(out.aux_loss.detach()),
                    "l0": float(out.l0),
                    "lr": lr,
                    "grad_norm": grad_norm,
                    "val_fvu": val_fvu,
                }
            )
            bar.update(1)
            bar.set_postfix(loss=f"{loss:.4g}", l0=f"{float(out.l0):.1f}", refresh=False)
            if st.step % tcfg.checkpoint_every == 0 and st.step < total:
                _save_checkpoint(out_dir / CHECKPOINT_FILE, sae, opt, st, tcfg)
                _write_log(st.rows, out_dir / LOG_FILE)
            if st.step >= last:
                break
    bar.close()
