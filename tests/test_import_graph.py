"""The package's import graph has no cycle, not even a type-only or function-level one.

Edges come from the same AST reading the code fingerprints use (every import statement,
``TYPE_CHECKING`` blocks and function bodies included). An import of one's own enclosing
package is left out: Python runs a package's ``__init__`` before any of its modules, so that
edge is implied by the package layout rather than chosen by the code.
"""

from __future__ import annotations

import graphlib

import pytest

from clipsae.runtime.fingerprint import PACKAGE_DIR, module_files, module_name, parse_module


def _import_graph() -> dict[str, set[str]]:
    graph: dict[str, set[str]] = {}
    for path in sorted(PACKAGE_DIR.rglob("*.py")):
        own = module_name(path)
        ancestors = {".".join(own.split(".")[:n]) for n in range(1, own.count(".") + 1)}
        if path.name == "__init__.py":
            ancestors.add(own)
        graph[own] = {
            target
            for name in parse_module(path.resolve()).imports
            if module_files(name)
            and (target := module_name(module_files(name)[-1])) not in ancestors
        }
    return graph


def _stage_graph(graph: dict[str, set[str]]) -> dict[str, set[str]]:
    """The same graph between subpackages (``clipsae.sae``): the stages of the pipeline."""

    def stage(module: str) -> str:
        return ".".join(module.split(".")[:2])

    stages: dict[str, set[str]] = {}
    for module, targets in graph.items():
        stages.setdefault(stage(module), set()).update(
            stage(t) for t in targets if stage(t) != stage(module)
        )
    return stages


def test_the_package_has_no_import_cycle():
    graphlib.TopologicalSorter(_import_graph()).prepare()  # CycleError names the cycle


def test_the_stages_import_each_other_without_a_cycle():
    graphlib.TopologicalSorter(_stage_graph(_import_graph())).prepare()


def test_a_planted_cycle_is_found():
    # report.document imports runtime.atomic, so this edge closes a circle.
    graph = _import_graph()
    assert "clipsae.runtime.atomic" in graph["clipsae.report.document"]
    graph["clipsae.runtime.atomic"].add("clipsae.report.document")
    with pytest.raises(graphlib.CycleError):
        graphlib.TopologicalSorter(graph).prepare()
    with pytest.raises(graphlib.CycleError):
        graphlib.TopologicalSorter(_stage_graph(graph)).prepare()
