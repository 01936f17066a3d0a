"""``clipsae export-sae``: SAELens loads the export and its encode/decode on raw inputs equal ours,
for every architecture, with a non-trivial input scale folded into the weights."""

from __future__ import annotations

import json
import math
from dataclasses import dataclass
from pathlib import Path
from typing import ClassVar

import numpy as np
import pytest
import torch
from sparse_data import sparse_data
from test_sae_zoo import ZOO
from torch import Tensor

from clipsae.activations.shards import ShardWriter
from clipsae.cli import main
from clipsae.sae import ARCH_CONFIGS, ARCHITECTURES, ReLUConfig, build_sae, load_sae, save_sae
from clipsae.sae.export import SAELENS_ARCHITECTURES, export_sae
from clipsae.sae.relu import ReLUSAE
from clipsae.steps.train import train

# What each of our architectures loads as in SAELens.
EXPECTED = {
    "relu": "standard",
    "topk": "topk",
    "matryoshka_k": "topk",
    "jumprelu": "jumprelu",
    "batchtopk": "jumprelu",
    "matryoshka_prefix": "jumprelu",
}
# What the workflow's extraction records in meta.json, and its train_sae adapter in cfg.json.
EXTRACTED = {"arch": "ViT-B-32", "pretrained": "openai", "layer": "block2", "dataset": "shapes"}
PROVENANCE = {"model": "vitb32", "layer": "block2", "dataset": "shapes"}


def _raw(n: int, seed: int) -> np.ndarray:
    """Rows far from unit scale and off-centre, so the folded scale and b_dec both matter."""
    x, _ = sparse_data(n, 16, 32, 3, seed=seed)
    return x * 7.0 + 2.0


def _shards(directory: Path, rows: np.ndarray, split: str) -> Path:
    writer = ShardWriter(
        directory, d=rows.shape[1], shard_rows=512, extra=EXTRACTED | {"split": split}
    )
    writer.add(rows)
    writer.close()
    return directory


@pytest.fixture(scope="module")
def trained(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """One SAE of each architecture, trained by the workflow's step on the same shards."""
    root = tmp_path_factory.mktemp("export")
    acts = _shards(root / "train", _raw(1200, seed=0), "train")
    val = _shards(root / "test", _raw(300, seed=1), "test")
    paths = {"training_data": str(acts), "validation_data": str(val)}
    dirs = {}
    for arch, (model_keys, train_keys) in ZOO.items():
        entry = {"arch": arch, "d_sae": 64, **model_keys, **train_keys}
        entry |= {"lr": 3e-3, "batch_size": 100, "epochs": 1, "warmup_frac": 5 / 12}
        dirs[arch] = root / arch
        train(entry=entry, train_path=acts, val_path=val, out_dir=dirs[arch],
              extra={**PROVENANCE, "sae": arch, **paths})  # fmt: skip
    return dirs


def test_every_architecture_has_an_export() -> None:
    assert set(SAELENS_ARCHITECTURES) == set(ARCHITECTURES) == set(EXPECTED)


@pytest.mark.parametrize("arch", sorted(EXPECTED))
def test_saelens_encode_and_decode_equal_ours(arch: str, trained, tmp_path) -> None:
    sae_lens = pytest.importorskip("sae_lens")
    ours = load_sae(trained[arch]).eval()
    assert abs(math.log(ours.cfg.input_scale)) > 1.0  # mean_norm rescaled the inputs
    out = export_sae(trained[arch], tmp_path / "export")
    theirs = sae_lens.SAE.load_from_disk(out)
    assert theirs.cfg.architecture() == EXPECTED[arch]
    assert type(theirs) is sae_lens.SAE.get_sae_class_for_architecture(EXPECTED[arch])
    if EXPECTED[arch] == "topk":
        assert theirs.cfg.k == ours.cfg.k

    x = torch.from_numpy(_raw(256, seed=2)) + 0.5 * torch.randn(256, 16)
    with torch.no_grad():
        codes, codes_sl = ours.encode(x), theirs.encode(x)
        active = codes > 0
        assert 0 < active.float().mean() < 0.9  # codes are sparse, not all zero
        _close(codes_sl, codes)
        _close(theirs.decode(codes_sl), ours.decode(codes))
        _close(theirs(x), ours(x))


def _close(actual: Tensor, expected: Tensor) -> None:
    torch.testing.assert_close(actual, expected, atol=1e-5, rtol=1e-5)


def test_command_writes_a_model_card_with_the_metrics(trained, tmp_path) -> None:
    out = tmp_path / "card"
    assert main(["export-sae", str(trained["topk"]), str(out)]) == 0
    assert {p.name for p in out.iterdir()} == {
        "sae_weights.safetensors",
        "cfg.json",
        "sparsity.safetensors",
        "README.md",
    }
    card = (out / "README.md").read_text()
    metrics = json.loads((trained["topk"] / "metrics.json").read_text())
    assert f"| fvu | {metrics['fvu']:.4g} |" in card
    assert "| model | `vitb32`: open_clip `ViT-B-32`, weights `openai` |" in card
    assert "| layer | block2 |" in card and "| training data | shapes (train split) |" in card
    assert f"| validation activations | {trained['topk'].parent / 'test'} |" in card
    assert 'SAE.load_from_disk("path/to/this/folder")' in card
    cfg = json.loads((out / "cfg.json").read_text())
    assert cfg["metadata"]["model_name"] == "ViT-B-32" and cfg["metadata"]["hook_name"] == "block2"
    assert cfg["metadata"]["clipsae"]["config"]["input_scale"] == pytest.approx(
        load_sae(trained["topk"]).cfg.input_scale
    )


def test_export_refuses_to_overwrite_its_source(trained) -> None:
    with pytest.raises(ValueError, match="would overwrite the SAE"):
        export_sae(trained["relu"], trained["relu"])


def test_an_architecture_without_saelens_equivalent_fails_naming_it(tmp_path, monkeypatch) -> None:
    # A config class registers itself when defined: marked here first, so the test removes it.
    monkeypatch.setitem(ARCH_CONFIGS, "softplus", None)

    @dataclass(frozen=True, kw_only=True)
    class _SoftplusConfig(ReLUConfig):
        arch: ClassVar[str] = "softplus"

    class _SoftplusSAE(ReLUSAE):
        """A real architecture SAELens has nothing like: smooth codes, never exactly zero."""

        arch = "softplus"
        config_class = _SoftplusConfig

        def encode(self, x: Tensor) -> Tensor:
            return torch.nn.functional.softplus(self.pre_acts(x))

    assert ARCH_CONFIGS["softplus"] is _SoftplusConfig
    monkeypatch.setitem(ARCHITECTURES, "softplus", _SoftplusSAE)
    save_sae(build_sae(_SoftplusConfig(d_in=16, d_sae=64)), tmp_path / "sae")
    with pytest.raises(ValueError, match="architecture 'softplus' has no SAELens equivalent"):
        export_sae(tmp_path / "sae", tmp_path / "out")
    assert not (tmp_path / "out").exists()
