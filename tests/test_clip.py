"""CLIP loading and layer reading, on the real ViT-B-32 architecture with random weights."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from safetensors.torch import save_file

from clipsae.activations.extract import extract_activations
from clipsae.activations.row_index import read_row_labels
from clipsae.activations.shards import ActivationStore
from clipsae.data import build_dataset
from clipsae.models.architectures import check_pretrained, layer_width, parse_layer
from clipsae.models.clip import VisionActivations, load_clip


@pytest.fixture(scope="module")
def vit_b32():
    torch.manual_seed(0)
    return load_clip("ViT-B-32", "none", device="cpu")


@pytest.fixture(scope="module")
def images() -> torch.Tensor:
    return torch.randn(3, 3, 224, 224, generator=torch.Generator().manual_seed(1))


def test_parse_layer_validates_against_the_architecture():
    assert parse_layer("final", "ViT-B-32") is None
    assert parse_layer("block11", "ViT-B-32") == 11
    with pytest.raises(ValueError, match=r"out of range.*block0\.\.block11"):
        parse_layer("block12", "ViT-B-32")
    with pytest.raises(ValueError, match="neither 'final' nor"):
        parse_layer("layer3", "ViT-B-32")
    assert layer_width("ViT-B-32", "final") == 512
    assert layer_width("ViT-B-32", "block3") == 768


def test_pretrained_tags_are_checked_without_downloading():
    check_pretrained("ViT-B-32", "openai")
    check_pretrained("ViT-B-32", "laion2b_s34b_b79k")
    check_pretrained("ViT-B-32", "none")
    with pytest.raises(ValueError, match=r"not known for ViT-B-32.*openai"):
        check_pretrained("ViT-B-32", "opneai")
    with pytest.raises(ValueError, match="unknown open_clip architecture 'ViT-B-33'"):
        check_pretrained("ViT-B-33", "openai")


@torch.inference_mode()
def test_final_layer_is_the_image_embedding(vit_b32, images):
    full = vit_b32.model.encode_image(images)
    torch.testing.assert_close(VisionActivations(vit_b32.model, None)(images), full)


@torch.inference_mode()
def test_block_layer_matches_a_forward_hook_and_finishing_restores_the_output(vit_b32, images):
    seen = {}
    block = vit_b32.model.visual.transformer.resblocks[11]
    handle = block.register_forward_hook(lambda m, i, out: seen.update(out=out))
    full = vit_b32.model.encode_image(images)
    handle.remove()
    reader = VisionActivations(vit_b32.model, 11)
    torch.testing.assert_close(reader(images), seen["out"][:, 0])
    torch.testing.assert_close(reader.finish(reader.residual(images)), full)
    early = VisionActivations(vit_b32.model, 3)
    torch.testing.assert_close(early.finish(early.residual(images)), full, rtol=1e-4, atol=1e-5)


@torch.inference_mode()
def test_splicing_the_identity_changes_nothing_and_a_zero_cls_changes_the_output(vit_b32, images):
    reader = VisionActivations(vit_b32.model, 5)
    residual = reader.residual(images)
    clean = reader.finish(residual)
    torch.testing.assert_close(reader.finish(residual, splice=lambda cls: cls), clean)
    assert not torch.allclose(reader.finish(residual, splice=torch.zeros_like), clean)


def test_a_local_checkpoint_loads_the_same_weights(vit_b32, images, tmp_path):
    path = tmp_path / "vit.safetensors"
    save_file({k: v.contiguous() for k, v in vit_b32.model.state_dict().items()}, str(path))
    again = load_clip("ViT-B-32", str(path), device="cpu")
    with torch.inference_mode():
        torch.testing.assert_close(
            again.model.encode_image(images), vit_b32.model.encode_image(images)
        )
    with pytest.raises(FileNotFoundError):
        load_clip("ViT-B-32", str(tmp_path / "missing.safetensors"), device="cpu")


@pytest.mark.parametrize("layer", ["final", "block11"])
def test_extraction_of_vit_b32_writes_shards_that_match_the_model(vit_b32, layer, tmp_path):
    dataset = build_dataset("s", {"source": "synthetic", "n_train": 5, "n_test": 0, "seed": 3})
    records = dataset.records()
    out = tmp_path / layer
    meta = extract_activations(vit_b32, dataset, records, layer, out, batch_size=2, shard_rows=2)
    assert (meta.n_rows, meta.d) == (5, 512 if layer == "final" else 768)
    assert [s.rows for s in meta.shards] == [2, 2, 1]
    stored = ActivationStore(out, verify=True).load_all()
    batch = torch.stack([vit_b32.preprocess(dataset.open_image(r)) for r in records])
    with torch.inference_mode():
        expected = VisionActivations(vit_b32.model, parse_layer(layer, "ViT-B-32"))(batch)
    np.testing.assert_allclose(stored, expected.numpy(), rtol=1e-4, atol=1e-4)
    np.testing.assert_array_equal(read_row_labels(out), [r.label for r in records])
    assert not out.with_name(out.name + ".partial").exists()
