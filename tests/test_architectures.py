"""clipsae.models.architectures: open_clip's architecture registry read without importing it.

The config checks run at every Snakefile parse; importing open_clip there cost about 5 s.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from clipsae.models import architectures
from clipsae.models.clip import registered_open_clip

open_clip = registered_open_clip()

REPO = Path(__file__).resolve().parents[1]


def test_the_registry_is_open_clips() -> None:
    assert set(architectures._registry()) == set(open_clip.list_models())
    for arch in ("ViT-B-32", "RN50", "clipsae-tiny-vit"):
        assert architectures.architecture_config(arch) == open_clip.get_model_config(arch)


def test_unknown_architectures_name_the_known_ones() -> None:
    with pytest.raises(ValueError, match=r"unknown open_clip architecture 'ViT-X'.*ViT-B-32"):
        architectures.architecture_config("ViT-X")


def test_pretrained_tags_read_without_open_clip_are_open_clips() -> None:
    declared = architectures._declared_tags()
    assert declared is not None and "openai" in declared["ViT-B-32"]
    for arch, tags in declared.items():
        assert set(tags) == set(open_clip.list_pretrained_tags_by_model(arch)), arch
    with pytest.raises(ValueError, match="pretrained tag 'opneai' is not known for RN50"):
        architectures.check_pretrained("RN50", "opneai")


@pytest.mark.parametrize("config", ["config/config.yaml", "config/experiments/seeds.yaml"])
def test_validating_a_config_imports_no_open_clip(config: str) -> None:
    probe = (
        "import json, sys\n"
        "from pathlib import Path\n"
        "import yaml\n"
        "from clipsae.config.validate import validate_config\n"
        f"validate_config(yaml.safe_load(Path('{config}').read_text()), Path('.'))\n"
        "print(json.dumps([m for m in ('open_clip', 'torchvision') if m in sys.modules]))\n"
    )
    run = subprocess.run(
        [sys.executable, "-c", probe],
        cwd=REPO,
        env={"PYTHONPATH": str(REPO)},
        capture_output=True,
        text=True,
        check=True,
    )
    assert json.loads(run.stdout) == []
