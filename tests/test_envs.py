"""envs/*.yaml against pyproject.toml: the conda envs must install what `pip install .` does.

Both lists are edited by hand, so without this test a bumped pin in pyproject.toml would
leave the cluster environments on the old version.
"""

from __future__ import annotations

import tomllib
from pathlib import Path

import pytest
import yaml
from packaging.requirements import Requirement
from packaging.specifiers import SpecifierSet
from packaging.utils import canonicalize_name
from packaging.version import Version

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
