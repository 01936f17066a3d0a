"""YAML files, parsed by libyaml when PyYAML was built with it.

The Snakefile reads the config schema and every dataset's prompt file at each parse, and a dry
run of the seed grid reads a dozen of them: PyYAML's pure-Python parser made that a second of the
5-second budget. The C parser accepts the same YAML and builds the same safe types.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml

_LOADER = getattr(yaml, "CSafeLoader", yaml.SafeLoader)


def read_yaml(path: Path) -> Any:
    """The file's content as plain Python values; raises ``yaml.YAMLError`` on bad YAML."""
    return yaml.load(Path(path).read_text(encoding="utf-8"), Loader=_LOADER)
