"""The lock, pyproject.toml and the conda environment agree (issue: one install everywhere).

requirements.lock is resolved by `make lock` (uv, universal: one file for Linux, macOS and
Windows, with environment markers); envs/intraclass.yaml is written from it by
tools/conda_env_from_lock.py. These tests fail when one is edited without the others."""

import importlib.util
import re
import tomllib
from pathlib import Path

from packaging.markers import Marker
from packaging.requirements import Requirement
from packaging.utils import canonicalize_name

ROOT = Path(__file__).resolve().parents[1]
LOCK = ROOT / "requirements.lock"


def _tool():
    spec = importlib.util.spec_from_file_location("conda_env_from_lock", ROOT / "tools" / "conda_env_from_lock.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _pins() -> dict[str, Requirement]:
    pins = {}
    for line in _tool().lock_requirements(LOCK.read_text()):
        requirement = Requirement(line)
        pins[canonicalize_name(requirement.name)] = requirement
    return pins


def test_every_lock_line_is_an_exact_pin():
    for name, requirement in _pins().items():
        specifiers = list(requirement.specifier)
        assert len(specifiers) == 1 and specifiers[0].operator == "==", f"{name} is not pinned exactly"


def test_every_pyproject_dependency_is_pinned():
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    declared = list(project["dependencies"])
    for extra in project.get("optional-dependencies", {}).values():
        declared += extra
    pins = _pins()
    for line in declared:
        requirement = Requirement(line)
        name = canonicalize_name(requirement.name)
        assert name in pins, f"pyproject dependency {line!r} is not in requirements.lock (run make lock)"
        version = next(iter(pins[name].specifier)).version
        assert requirement.specifier.contains(version), f"lock pins {name}=={version}, outside {line!r}"


def test_cuda_wheels_install_only_on_linux():
    """A macOS or Windows machine must not be asked for the CUDA builds torch uses on Linux."""
    mac = {"sys_platform": "darwin", "platform_machine": "arm64"}
    for name, requirement in _pins().items():
        if re.match(r"(nvidia|cuda|triton)", name):
            assert requirement.marker is not None, f"{name} has no environment marker"
            assert not requirement.marker.evaluate(mac), f"{name} would install on macOS"
    assert Marker("sys_platform == 'linux'").evaluate({"sys_platform": "linux"})


def test_conda_environment_is_the_lock():
    tool = _tool()
    expected = tool.environment_yaml(tool.lock_requirements(LOCK.read_text()))
    actual = (ROOT / "envs" / "intraclass.yaml").read_text()
    assert actual == expected, "envs/intraclass.yaml differs from requirements.lock: run make lock"
