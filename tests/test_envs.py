"""envs/*.yaml against pyproject.toml and against the rules that use them.

The env files are edited by hand, so without these tests a bumped pin in pyproject.toml would
leave the cluster environments on the old version, and a rule whose code starts importing a
package its env lacks would fail only on the cluster. Building the envs needs conda and a
network, so that is not tested here.
"""

from __future__ import annotations

import importlib.metadata
import re
import sys
import tomllib
from pathlib import Path

import pytest
import yaml
from packaging.requirements import Requirement
from packaging.specifiers import SpecifierSet
from packaging.utils import canonicalize_name
from packaging.version import Version

from clipsae.runtime.fingerprint import PACKAGE, import_closure, parse_module

REPO = Path(__file__).resolve().parents[1]
ENV_FILES = sorted((REPO / "envs").glob("*.yaml"))
PYPROJECT = tomllib.loads((REPO / "pyproject.toml").read_text())["project"]


def by_name(requirements: list[str]) -> dict[str, Requirement]:
    parsed = [Requirement(line) for line in requirements]
    return {canonicalize_name(req.name): req for req in parsed}


def env_pip_requirements(env_file: Path) -> dict[str, Requirement]:
    """The env's pip packages (pip options such as --extra-index-url are not packages)."""
    dependencies = yaml.safe_load(env_file.read_text())["dependencies"]
    pip_lists = [dep["pip"] for dep in dependencies if isinstance(dep, dict) and "pip" in dep]
    assert len(pip_lists) == 1, f"{env_file.name}: expected one pip section"
    return by_name([line for line in pip_lists[0] if not line.startswith("-")])


def env_python(env_file: Path) -> Version:
    dependencies = yaml.safe_load(env_file.read_text())["dependencies"]
    pythons = [dep for dep in dependencies if isinstance(dep, str) and dep.startswith("python=")]
    assert len(pythons) == 1, f"{env_file.name}: pin python=X.Y once"
    return Version(pythons[0].removeprefix("python="))


def compatible(env_spec: SpecifierSet, project_spec: SpecifierSet) -> bool:
    """Same range, or an exact pin the project's range allows."""
    if env_spec == project_spec:
        return True
    pins = [spec for spec in env_spec if spec.operator == "=="]
    return len(env_spec) == 1 and len(pins) == 1 and Version(pins[0].version) in project_spec


def rule_blocks() -> dict[str, tuple[Path, str]]:
    """Rule name -> (its .smk file, the rule's text), for every rule in rules/."""
    blocks = {}
    for smk in sorted((REPO / "rules").glob("*.smk")):
        for block in re.split(r"\n(?=rule \w+:)", smk.read_text()):
            if head := re.match(r"rule (\w+):", block):
                blocks[head.group(1)] = (smk, block)
    return blocks


def directive(block: str, name: str) -> str | None:
    found = re.search(rf"^    {name}:\n\s+\"([^\"]+)\"", block, re.M)
    return found.group(1) if found else None


def imported_distributions(script: Path) -> set[str]:
    """Distributions whose modules the script's import closure names (stdlib and clipsae not)."""
    names = {n for path in import_closure(script.resolve()) for n in parse_module(path).imports}
    tops = {n.split(".")[0] for n in names} - set(sys.stdlib_module_names) - {PACKAGE}
    by_module = importlib.metadata.packages_distributions()
    missing = sorted(tops - set(by_module))
    assert not missing, f"{script.name} imports {missing}, which no installed distribution provides"
    return {canonicalize_name(dist) for top in tops for dist in by_module[top]}


RULES = rule_blocks()
DEPENDENCIES = by_name(PYPROJECT["dependencies"])
EXTRAS = by_name([req for reqs in PYPROJECT["optional-dependencies"].values() for req in reqs])


def test_there_are_env_files() -> None:
    assert {path.name for path in ENV_FILES} >= {"torch.yaml", "cpu.yaml"}


@pytest.mark.parametrize("env_file", ENV_FILES, ids=lambda path: path.name)
def test_env_installs_every_project_dependency(env_file: Path) -> None:
    env = env_pip_requirements(env_file)
    missing = sorted(set(DEPENDENCIES) - set(env))
    assert not missing, f"{env_file.name} lacks {missing}"
    for name, requirement in DEPENDENCIES.items():
        assert compatible(env[name].specifier, requirement.specifier), (
            f"{env_file.name}: {env[name]} does not match pyproject's {requirement}"
        )


@pytest.mark.parametrize("env_file", ENV_FILES, ids=lambda path: path.name)
def test_env_adds_only_project_extras(env_file: Path) -> None:
    """Anything beyond [project] dependencies must be a declared extra, with its spec."""
    for name, requirement in env_pip_requirements(env_file).items():
        if name in DEPENDENCIES:
            continue
        assert name in EXTRAS, f"{env_file.name}: {name} is not in pyproject.toml"
        assert compatible(requirement.specifier, EXTRAS[name].specifier), requirement


@pytest.mark.parametrize("env_file", ENV_FILES, ids=lambda path: path.name)
def test_env_python_satisfies_requires_python(env_file: Path) -> None:
    assert env_python(env_file) in SpecifierSet(PYPROJECT["requires-python"])


def test_compatible_rejects_drift() -> None:
    assert compatible(SpecifierSet("==2.14.1"), SpecifierSet("==2.14.1"))
    assert compatible(SpecifierSet("==1.2"), SpecifierSet(">=1.0"))
    assert not compatible(SpecifierSet("==2.14.0"), SpecifierSet("==2.14.1"))
    assert not compatible(SpecifierSet(">=0.9"), SpecifierSet(">=1.0"))
    assert not compatible(SpecifierSet(""), SpecifierSet(">=1.0"))


def test_the_rules_are_found() -> None:
    assert {"prepare_dataset", "extract_image", "train_sae", "report"} <= set(RULES)


@pytest.mark.parametrize("rule", sorted(RULES))
def test_each_rule_names_an_env_that_installs_what_its_code_imports(rule: str) -> None:
    smk, block = RULES[rule]
    conda, script = directive(block, "conda"), directive(block, "script")
    if script is None:
        assert conda is None, f"rule {rule} runs no code but names an env"
        return
    assert conda is not None, f"rule {rule} ({smk.name}) has no conda: directive"
    env_file = (smk.parent / conda).resolve()
    assert env_file.parent == REPO / "envs" and env_file.is_file(), f"{rule}: {conda}"
    installed = set(env_pip_requirements(env_file))
    lacking = sorted(imported_distributions(smk.parent / script) - installed)
    assert not lacking, f"rule {rule}: {env_file.name} lacks {lacking}, which its code imports"
