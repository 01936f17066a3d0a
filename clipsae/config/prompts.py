"""Zero-shot prompt ensembles: a dataset's ``templates`` as a list, or a reference to a file
(``config/zeroshot/<name>.yaml`` by name, or a path) of published templates and class names.

Torch-free: resolved when the workflow's config is read, so the resolved lists are the
``embed_text`` params, and an edit to a prompts file reruns the class embeddings.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from clipsae.config.yamlfile import read_yaml

# Where `templates: <name>` looks, relative to the workflow folder.
PROMPTS_DIR = Path("config") / "zeroshot"


@dataclass(frozen=True, kw_only=True)
class Prompts:
    """Templates (each with ``{}``) and, from a published ensemble, the class names to put into
    them in label order (``None``: the dataset's own)."""

    templates: tuple[str, ...]
    classes: tuple[str, ...] | None = None
    source: str = "config"

    def __post_init__(self) -> None:
        bad = [t for t in self.templates if "{}" not in t]
        if not self.templates or bad:
            raise ValueError(f"{self.source}: templates must be non-empty, each with '{{}}' {bad}")
        if self.classes is not None and not self.classes:
            raise ValueError(f"{self.source}: 'classes' is empty")

    def to_params(self) -> dict:
        classes = None if self.classes is None else list(self.classes)
        return {"templates": list(self.templates), "classes": classes}


def prompts_file(reference: str, base_dir: Path) -> Path:
    """The file a ``templates: <reference>`` names: a shipped ensemble by name, else a path."""
    if "/" not in reference and not reference.endswith((".yaml", ".yml")):
        return Path(base_dir) / PROMPTS_DIR / f"{reference}.yaml"
    return Path(base_dir) / reference


def load_prompts(templates: str | list[str], base_dir: Path) -> Prompts:
    """A dataset entry's ``templates`` value as ``Prompts``; raises naming the file and key."""
    if not isinstance(templates, str):
        return Prompts(templates=tuple(templates))
    path = prompts_file(templates, base_dir)
    if not path.is_file():
        shipped = sorted(p.stem for p in (Path(base_dir) / PROMPTS_DIR).glob("*.yaml"))
        raise FileNotFoundError(f"no prompts file {path} (shipped: {', '.join(shipped)})")
    raw = read_yaml(path)
    unknown = set(raw) - {"templates", "classes", "source"} if isinstance(raw, dict) else {"?"}
    if unknown or "templates" not in raw:
        raise ValueError(f"{path}: expected keys templates, classes, source; got {raw!r:.80}")
    classes = raw.get("classes")
    return Prompts(
        templates=tuple(raw["templates"]),
        classes=None if classes is None else tuple(map(str, classes)),
        source=str(path),
    )
