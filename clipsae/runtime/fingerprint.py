"""Code fingerprints: a hash of the library code a workflow step runs, for Snakemake's params.

Snakemake reruns a script rule when the script file is newer than its outputs, but not when a
module the script imports changes, so results could silently come from old code. A rule that
puts ``code_fingerprint(script)`` in its params reruns exactly when the code it can execute
changes: the script plus the transitive closure of its ``clipsae`` imports (function-level
imports included, since they run when the function is called). Each file is hashed in a
normalised form, its syntax tree without docstrings, so comment-, formatting- and docstring-only
edits rerun nothing.

Everything here is pure ``ast`` work on the source files, so the Snakefile parse imports no
torch or open_clip to compute it, and each file is read and parsed once per process.
"""

from __future__ import annotations

import ast
import hashlib
from collections.abc import Iterator
from dataclasses import dataclass
from functools import cache
from pathlib import Path

PACKAGE = "clipsae"
# The package the running code imports, so a checkout on PYTHONPATH fingerprints itself.
PACKAGE_DIR = Path(__file__).resolve().parents[1]
_DOCSTRING_OWNERS = (ast.Module, ast.ClassDef, ast.FunctionDef, ast.AsyncFunctionDef)


@dataclass(frozen=True)
class ParsedModule:
    """One source file: its normalised code and the absolute module names it imports."""

    code: str
    imports: tuple[str, ...]


def module_name(path: Path) -> str | None:
    """``clipsae.sae.train`` for ``.../clipsae/sae/train.py``; None outside the package."""
    try:
        parts = list(Path(path).resolve().relative_to(PACKAGE_DIR.parent).with_suffix("").parts)
    except ValueError:
        return None
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def _is_docstring(statement: ast.stmt) -> bool:
    return (
        isinstance(statement, ast.Expr)
        and isinstance(statement.value, ast.Constant)
        and isinstance(statement.value.value, str)
    )


def _statements(body: list[ast.stmt]) -> Iterator[ast.stmt]:
    """Every statement in ``body``, nested ones included. Imports and docstrings are statements,
    so this skips the expressions, which are most of a tree (a full ``ast.walk`` costs 3x)."""
    for statement in body:
        yield statement
        for field in ("body", "orelse", "finalbody"):
            nested = getattr(statement, field, None)
            if isinstance(nested, list):
                yield from _statements(nested)
        for part in (*getattr(statement, "handlers", ()), *getattr(statement, "cases", ())):
            yield from _statements(part.body)


def _strip_docstrings(tree: ast.Module) -> ast.Module:
    for node in (tree, *_statements(tree.body)):
        if isinstance(node, _DOCSTRING_OWNERS) and node.body and _is_docstring(node.body[0]):
            node.body = node.body[1:]
    return tree


def _imported_names(tree: ast.Module, path: Path) -> tuple[str, ...]:
    """Absolute names of every import in the file; ``from a import b`` gives ``a`` and ``a.b``
    (``a.b`` may be a module or just a name in ``a``: only modules resolve to files)."""
    names: list[str] = []
    for node in _statements(tree.body):
        if isinstance(node, ast.Import):
            names += [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            base = _absolute_base(node, path)
            if base == "__future__":
                continue
            names.append(base)
            names += [f"{base}.{alias.name}" for alias in node.names if alias.name != "*"]
    return tuple(dict.fromkeys(names))


def _absolute_base(node: ast.ImportFrom, path: Path) -> str:
    if not node.level:
        return node.module or ""
    own = module_name(path)
    if own is None:
        raise ValueError(f"{path}: relative import outside the {PACKAGE} package")
    package = own.split(".") if Path(path).name == "__init__.py" else own.split(".")[:-1]
    anchor = package[: len(package) - (node.level - 1)]
    return ".".join([*anchor, node.module] if node.module else anchor)


@cache
def parse_module(path: Path) -> ParsedModule:
    """Parse one file once per process (``path`` resolved)."""
    tree = ast.parse(Path(path).read_text(encoding="utf-8"), filename=str(path))
    imports = _imported_names(tree, path)
    return ParsedModule(code=ast.dump(_strip_docstrings(tree)), imports=imports)


def module_files(name: str) -> list[Path]:
    """The files importing ``name`` executes inside the package: every enclosing package's
    ``__init__.py`` and the module itself. Empty for names outside the package, or for
    names that are not modules (``clipsae.sae.SAE``)."""
    parts = name.split(".")
    if parts[0] != PACKAGE:
        return []
    target = PACKAGE_DIR.parent.joinpath(*parts)
    module = target / "__init__.py" if target.is_dir() else target.with_suffix(".py")
    if not module.is_file():
        return []
    packages = [
        PACKAGE_DIR.parent.joinpath(*parts[:n], "__init__.py") for n in range(1, len(parts))
    ]
    return [*(p for p in packages if p.is_file()), module]


@cache
def import_closure(entry: Path) -> tuple[Path, ...]:
    """``entry`` and every package file it can import, directly or transitively, sorted."""
    seen = {Path(entry).resolve()}
    todo = list(seen)
    while todo:
        for name in parse_module(todo.pop()).imports:
            for path in module_files(name):
                if path not in seen:
                    seen.add(path)
                    todo.append(path)
    return tuple(sorted(seen))


def _label(path: Path) -> str:
    """A package file by its path in the package, the entry script by its name."""
    if path.is_relative_to(PACKAGE_DIR):
        return path.relative_to(PACKAGE_DIR.parent).as_posix()
    return path.name


@cache
def code_fingerprint(entry: Path) -> str:
    """SHA-256 over the normalised code of ``entry``'s import closure, keyed by file path."""
    digest = hashlib.sha256()
    # Sorted by label, not by absolute path, so the checkout's location changes nothing.
    for label, path in sorted((_label(p), p) for p in import_closure(Path(entry).resolve())):
        digest.update(f"{label}\0{parse_module(path).code}\0".encode())
    return digest.hexdigest()
