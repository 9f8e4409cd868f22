"""The linters of `make lint` (run by `make test` and .ci/run before the tests) fail on a
finding: a copy of the repository with one lint error injected must not pass tools/lint."""

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
LINT = ROOT / "tools" / "lint"


def _copy_repository(target: Path) -> Path:
    files = subprocess.run(["git", "ls-files"], cwd=ROOT, check=True, capture_output=True, text=True)
    for name in files.stdout.splitlines():
        source = ROOT / name
        if source.is_file() and not source.is_symlink():
            (target / name).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(source, target / name)
    return target


def _lint(folder: Path) -> subprocess.CompletedProcess:
    # the linters installed beside this interpreter (the project's .venv)
    env = {**os.environ, "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ['PATH']}"}
    return subprocess.run([str(LINT), str(folder)], env=env, capture_output=True, text=True, check=False)


@pytest.mark.skipif(shutil.which("git") is None, reason="needs git to list the tracked files")
def test_lint_fails_on_an_unused_import(tmp_path):
    copy = _copy_repository(tmp_path)
    (copy / "src" / "intraclass" / "lint_probe.py").write_text('"""Probe."""\n\nimport os\n')
    result = _lint(copy)
    assert result.returncode != 0
    assert "F401" in result.stdout and "lint_probe.py" in result.stdout


@pytest.mark.skipif(shutil.which("git") is None, reason="needs git to list the tracked files")
def test_lint_fails_on_an_unformatted_rule_file(tmp_path):
    copy = _copy_repository(tmp_path)
    rules = copy / "workflow" / "rules" / "measures.smk"
    rules.write_text(rules.read_text().replace("    input:\n", "    input :\n", 1))
    result = _lint(copy)
    assert result.returncode != 0
    assert "measures.smk" in result.stdout + result.stderr
