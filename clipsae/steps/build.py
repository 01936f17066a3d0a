"""Step ``build_embedded_clip``: train the tiny CLIP on generated captions, score it, ship it.

Every build is scored on held-out generated images (their own random stream, never seen in
training), one zero-shot task per factor with the demo datasets' prompts, and the accuracies go
into ``build.json``: a schedule or architecture change then shows at once what the model sees,
without a run of the whole workflow.

``ship_model`` turns one build into the package's shipped weights (``pretrained: shipped``):
fp16 halves the file (CLIP's 49,408-token embedding is most of it), and the record beside it
keeps the build's ``build.json`` with both files' checksums, the command that rebuilds the
source and the held-out zero-shot of the fp16 weights themselves, which is what users load.
"""

from __future__ import annotations

import json
from pathlib import Path

import torch
from safetensors.torch import load_file, save_file

from clipsae.data.synthetic import SHAPES
from clipsae.evaluate.zeroshot import ZeroShotTally
from clipsae.models.build_config import BuildConfig
from clipsae.models.clip import LoadedClip, load_clip
from clipsae.models.embedded import (
    HELDOUT_STREAM,
    build_embedded_clip,
    generate_images,
    image_size,
    image_tensor,
)
from clipsae.models.text import class_embeddings
from clipsae.models.weights import BUILD_REPORT, SHIPPED_DIR, WEIGHTS_FILE
from clipsae.runtime.atomic import atomic_output, atomic_write_json
from clipsae.runtime.checksum import file_sha256
from clipsae.runtime.device import DeviceSpec

HELDOUT_IMAGES = 400
# The demo datasets' prompts (config/config.yaml): shapes by name, colours as "a red shape".
HELDOUT_TEMPLATES: dict[str, tuple[str, ...]] = {
    "color": ("a {} shape.", "a photo of a {} shape."),
    "shape": ("a photo of a {}.", "a {}."),
}


@torch.inference_mode()
def heldout_zeroshot(clip: LoadedClip, cfg: BuildConfig, *, n: int = HELDOUT_IMAGES) -> dict:
    """Zero-shot accuracy per factor on ``n`` held-out images, among all the build's colours
    (a colour the sample happens to lack still competes) and all shapes."""
    images, attributes = generate_images(
        n, image_size(clip), cfg.seed, cfg.colors, stream=HELDOUT_STREAM
    )
    embeddings = clip.model.encode_image(image_tensor(clip, images).to(clip.device))
    scores: dict[str, float | int] = {"n": n}
    classes = {"color": list(cfg.colors), "shape": list(SHAPES)}
    for factor, templates in HELDOUT_TEMPLATES.items():
        names = classes[factor]
        labels = torch.tensor([names.index(attrs[factor]) for attrs in attributes])
        tally = ZeroShotTally(class_embeddings(clip, names, templates))
        tally.update(embeddings, embeddings, labels)
        scores[factor] = tally.result()["accuracy_clip"]
    return scores


def build_model(*, arch: str, build: dict, out_dir: Path, device: DeviceSpec = "auto") -> dict:
    """Build, score on held-out images and return ``build.json``, ``heldout_zeroshot`` added."""
    cfg = BuildConfig(**build)
    clip, report = build_embedded_clip(arch, Path(out_dir), cfg, device=device)
    report["heldout_zeroshot"] = heldout_zeroshot(clip, cfg)
    atomic_write_json(report, Path(out_dir) / BUILD_REPORT)
    return report


def ship_model(*, built_dir: Path, rebuild: str, out_dir: Path = SHIPPED_DIR) -> dict:
    """Write ``<arch>.safetensors`` (fp16) and ``<arch>.json`` into ``out_dir`` from a build.

    ``rebuild`` is the command that made ``built_dir`` (kept in the record, so that whoever
    replaces the weights knows how they were made).
    """
    built_dir, out_dir = Path(built_dir), Path(out_dir)
    report = json.loads((built_dir / BUILD_REPORT).read_text())
    arch, source = report["arch"], built_dir / WEIGHTS_FILE
    state = load_file(source)
    half = {k: v.half() if v.is_floating_point() else v for k, v in state.items()}
    target = out_dir / f"{arch}.safetensors"
    with atomic_output(target) as tmp:
        save_file(half, str(tmp))
    clip = load_clip(arch, str(target), device="cpu")
    record = {
        **report,
        "shipped": {
            "dtype": "float16",
            "sha256": file_sha256(target),
            "source_sha256": file_sha256(source),
            "rebuild": rebuild,
            "heldout_zeroshot": heldout_zeroshot(clip, BuildConfig(**report["config"])),
        },
    }
    atomic_write_json(record, out_dir / f"{arch}.json")
    return record
