"""A clipsae checkpoint as a folder that SAELens (>= 6) opens with ``SAE.load_from_disk``.

Our checkpoints already use SAELens' file names, but not its ``cfg.json`` keys, and they carry
``input_scale``, which SAELens has no field for. The export folds the scale into the weights, as
SAELens' own ``fold_activation_norm_scaling_factor`` does. With ``s = input_scale``, ours is

    codes = act((s x - b_dec) W_enc + b_enc),   x_hat = (codes W_dec + b_dec) / s

and with ``W_enc' = s W_enc``, ``W_dec' = W_dec / s``, ``b_dec' = b_dec / s`` SAELens computes

    codes = act((x - b_dec') W_enc' + b_enc),   x_hat = codes W_dec' + b_dec'

the same codes from the same raw inputs, so thresholds (in code units) carry over unchanged.

Each architecture maps to the SAELens architecture that encodes the way ours does at inference.
The batch-level ones (``batchtopk``, ``matryoshka_prefix``) keep every pre-activation above one
learned threshold at inference, which is a JumpReLU with that threshold for every latent: SAELens
saves its own BatchTopK and Matryoshka BatchTopK SAEs that way. ``matryoshka_k`` infers as a TopK
with ``k``. The training-only keys (``k_list``, ``prefix_sizes``, the recipe) go into the
metadata, which SAELens keeps but does not use.
"""

from __future__ import annotations

import json
import shutil
from collections.abc import Callable
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from torch import Tensor

from clipsae import __version__
from clipsae.runtime.atomic import atomic_output, atomic_write_json, atomic_write_text
from clipsae.sae.base import SAE
from clipsae.sae.io import CFG_FILE, SPARSITY_FILE, WEIGHTS_FILE, atomic_save_tensors, load_sae

METRICS_FILE = "metrics.json"
CARD_FILE = "README.md"
# SAELens reads a cfg.json whose metadata has no 6.x ``sae_lens_version`` as a pre-6 config and
# renames its keys; this is the version of the layout written here, not of an installed SAELens.
SAELENS_FORMAT_VERSION = "6.0.0"


@dataclass(frozen=True)
class SAELensArch:
    """An SAELens inference architecture: its name, its config keys beyond the shared ones, and
    the tensors beyond ``W_enc, b_enc, W_dec, b_dec`` (in code units, so not rescaled)."""

    name: str
    cfg: dict[str, Any]
    tensors: dict[str, Tensor]


def _standard(sae: SAE) -> SAELensArch:
    return SAELensArch("standard", {}, {})


def _topk(sae: SAE) -> SAELensArch:
    return SAELensArch("topk", {"k": sae.cfg.k, "rescale_acts_by_decoder_norm": False}, {})


def _jumprelu(sae: SAE) -> SAELensArch:
    return SAELensArch("jumprelu", {}, {"threshold": sae.threshold.detach().clone()})


def _batch_threshold(sae: SAE) -> SAELensArch:
    """Ours keeps positive pre-activations at or above ``max(threshold, 0)`` (any positive one
    before the first training step set it), SAELens' JumpReLU those strictly above its
    per-latent threshold: equal but for pre-activations exactly on the threshold."""
    threshold = sae.threshold.detach().clamp_min(0).expand(sae.cfg.d_sae).clone()
    return SAELensArch("jumprelu", {}, {"threshold": threshold})


SAELENS_ARCHITECTURES: dict[str, Callable[[SAE], SAELensArch]] = {
    "relu": _standard,
    "topk": _topk,
    "matryoshka_k": _topk,
    "jumprelu": _jumprelu,
    "batchtopk": _batch_threshold,
    "matryoshka_prefix": _batch_threshold,
}


def saelens_arch(sae: SAE) -> SAELensArch:
    """The SAELens architecture of ``sae``; a clear error for one SAELens cannot run."""
    arch = sae.cfg.arch
    if arch not in SAELENS_ARCHITECTURES:
        raise ValueError(
            f"clipsae architecture {arch!r} has no SAELens equivalent that encodes the same way; "
            f"exportable architectures: {', '.join(sorted(SAELENS_ARCHITECTURES))}"
        )
    return SAELENS_ARCHITECTURES[arch](sae)


def saelens_state(sae: SAE, metadata: dict[str, Any]) -> tuple[dict[str, Any], dict[str, Tensor]]:
    """SAELens' ``cfg.json`` and state dict for ``sae``, with ``input_scale`` folded in."""
    target = saelens_arch(sae)
    scale = sae.cfg.input_scale
    tensors = {
        "W_enc": sae.W_enc.detach() * scale,
        "b_enc": sae.b_enc.detach().clone(),
        "W_dec": sae.W_dec.detach() / scale,
        "b_dec": sae.b_dec.detach() / scale,
        **target.tensors,
    }
    cfg = {
        "architecture": target.name,
        "d_in": sae.cfg.d_in,
        "d_sae": sae.cfg.d_sae,
        "dtype": str(sae.W_enc.dtype).removeprefix("torch."),
        "device": "cpu",
        "apply_b_dec_to_input": True,
        "normalize_activations": "none",
        "reshape_activations": "none",
        **target.cfg,
        "metadata": {"sae_lens_version": SAELENS_FORMAT_VERSION, **metadata},
    }
    return cfg, tensors


def export_sae(sae_dir: Path, out_dir: Path) -> Path:
    """Write the SAE saved in ``sae_dir`` to ``out_dir`` for SAELens, with a model card
    (``README.md``) built from its ``cfg.json`` extras and ``metrics.json``; returns ``out_dir``.
    """
    sae_dir, out_dir = Path(sae_dir), Path(out_dir)
    if out_dir.resolve() == sae_dir.resolve():
        raise ValueError(f"the export would overwrite the SAE in {sae_dir}: give another folder")
    sae = load_sae(sae_dir, "cpu")
    saved = json.loads((sae_dir / CFG_FILE).read_text())
    metrics_path = sae_dir / METRICS_FILE
    metrics = json.loads(metrics_path.read_text()) if metrics_path.exists() else {}
    cfg, tensors = saelens_state(sae, _metadata(sae, saved))
    out_dir.mkdir(parents=True, exist_ok=True)
    atomic_save_tensors(tensors, out_dir / WEIGHTS_FILE)
    atomic_write_json(cfg, out_dir / CFG_FILE)
    if (sae_dir / SPARSITY_FILE).exists():
        with atomic_output(out_dir / SPARSITY_FILE) as tmp:
            shutil.copyfile(sae_dir / SPARSITY_FILE, tmp)
    card = model_card(sae=sae, cfg=cfg, saved=saved, metrics=metrics)
    atomic_write_text(out_dir / CARD_FILE, card)
    return out_dir


@dataclass(frozen=True)
class Provenance:
    """What an SAE reads and was trained on, from its ``cfg.json`` extras: the workflow's names
    (``model``, ``layer``, ``dataset``, ``sae``), the activation paths and what their extraction
    recorded (``activations``: CLIP architecture, weights, layer, dataset or image folder,
    split). ``None`` where nothing was recorded."""

    model: str | None
    clip_arch: str | None
    pretrained: str | None
    layer: str | None
    dataset: str | None
    training_data: str | None
    validation_data: str | None

    @classmethod
    def of(cls, saved: dict[str, Any]) -> Provenance:
        source = saved.get("activations", {})
        data = saved.get("dataset") or source.get("dataset") or source.get("images")
        split = source.get("split")
        return cls(
            model=saved.get("model"),
            clip_arch=source.get("arch"),
            pretrained=source.get("pretrained"),
            layer=saved.get("layer") or source.get("layer"),
            dataset=f"{data} ({split} split)" if data and split else data,
            training_data=saved.get("training_data") or None,
            validation_data=saved.get("validation_data") or None,
        )


def _metadata(sae: SAE, saved: dict[str, Any]) -> dict[str, Any]:
    """SAELens metadata: its own keys where ours have a meaning for them, ours under
    ``clipsae`` (the architecture's config, the training recipe, the provenance)."""
    about = Provenance.of(saved)
    return {
        "model_name": about.clip_arch or about.model,
        "hook_name": about.layer,
        "dataset_path": about.training_data or about.dataset,
        "clipsae": {
            "version": saved.get("clipsae_version", __version__),
            "config": sae.cfg.to_dict(),
            "train": saved.get("train"),
            "provenance": asdict(about),
        },
    }


def model_card(
    *, sae: SAE, cfg: dict[str, Any], saved: dict[str, Any], metrics: dict[str, Any]
) -> str:
    """The ``README.md`` of an export: what the SAE reads, how it was trained, how well it
    reconstructs, and the lines that load it."""
    about = Provenance.of(saved)
    rows = [
        ("model", _model(about)),
        ("layer", about.layer),
        ("training data", about.dataset),
        ("training activations", about.training_data),
        ("validation activations", about.validation_data),
        ("architecture", f"clipsae `{sae.cfg.arch}`, loaded by SAELens as `{cfg['architecture']}`"),
        ("d_in, d_sae", f"{sae.cfg.d_in}, {sae.cfg.d_sae}"),
        ("k", getattr(sae.cfg, "k", None)),  # the TopK family's
        ("input scale", f"{sae.cfg.input_scale:.6g}, folded into the weights"),
    ]
    title = saved.get("sae", sae.cfg.arch)
    lines = [
        "---",
        "library_name: saelens",
        "tags: [sparse-autoencoder, clip, clipsae]",
        "---",
        "",
        f"# {title}: a sparse autoencoder on CLIP activations",
        "",
        f"Trained with clipsae {saved.get('clipsae_version', __version__)} and exported for "
        "SAELens (>= 6).",
        "",
        "| | |",
        "|---|---|",
        *(f"| {key} | {value} |" for key, value in rows if value is not None),
        "",
        "## Metrics",
        "",
    ]
    if metrics:
        where = metrics.get("evaluated_on", "unrecorded")
        lines += [f"From `metrics.json`, on the {where} rows.", ""]
        lines += ["| metric | value |", "|---|---|"]
        lines += [f"| {key} | {_number(value)} |" for key, value in metrics.items()]
    else:
        lines.append("No `metrics.json` was saved with this SAE.")
    lines += [
        "",
        "## Load",
        "",
        "```python",
        "from sae_lens import SAE",
        "",
        'sae = SAE.load_from_disk("path/to/this/folder")',
        "codes = sae.encode(activations)  # (n, d_in) raw activations -> (n, d_sae)",
        "reconstruction = sae.decode(codes)",
        "```",
        "",
    ]
    if saved.get("train"):
        recipe = json.dumps(saved["train"], indent=2)
        lines += ["## Training recipe", "", "```json", recipe, "```", ""]
    return "\n".join(lines)


def _model(about: Provenance) -> str | None:
    """``name: open_clip arch, weights tag``, with the parts that were recorded."""
    clip = f"open_clip `{about.clip_arch}`" if about.clip_arch else None
    if clip and about.pretrained:
        clip += f", weights `{about.pretrained}`"
    parts = [f"`{about.model}`" if about.model else None, clip]
    return ": ".join(part for part in parts if part) or None


def _number(value: Any) -> str:
    return f"{value:.4g}" if isinstance(value, float) else str(value)
