"""profiles/slurm without a cluster: what the profile's groups make of the DAG (a dry run).

The real submissions are tested on a localhost SLURM in tests/test_slurm.py (root, slow);
these checks need neither: every per-model rule after training is in the profile's group
(a rule left out would be one sbatch job per model), the group's jobs are stacked so that
it asks for one GPU, and the analysis is local.
"""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[1]
PROFILE = ROOT / "profiles" / "slurm" / "config.yaml"
TINY = ROOT / "tests" / "configs" / "tiny.yaml"
sys.path.insert(0, str(ROOT / "benchmarks"))

from dag import count_submissions  # noqa: E402 - benchmarks/dag.py, the paper's count

pytestmark = pytest.mark.slow

# A top-level job block (ungrouped) and its wildcards line.
BLOCK = re.compile(r"^(?:local)?rule ([A-Za-z0-9_]+):\n(?: .*\n)*?    wildcards: (.*)$", re.MULTILINE)


def snakemake(*args: str, cwd: Path = ROOT) -> str:
    proc = subprocess.run([sys.executable, "-m", "snakemake", *args], cwd=cwd, capture_output=True,
                          text=True, timeout=600)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    return proc.stdout + proc.stderr


@pytest.fixture(scope="module")
def profile() -> dict:
    return yaml.safe_load(PROFILE.read_text())


@pytest.fixture(scope="module")
def tiny_dry_run(tmp_path_factory) -> str:
    workdir = tmp_path_factory.mktemp("profile-dry-run")
    return snakemake("-n", "--profile", "slurm", "--configfile", str(TINY), "-d", str(workdir))


def test_grouped_rules_exist(profile):
    """A rule named in `groups` that the workflow lacks is ignored by Snakemake, silently."""
    rules = set(snakemake("--list-rules", "--configfile", str(TINY)).split())
    grouped = {entry.split("=")[0] for entry in profile["groups"]}
    assert grouped <= rules, grouped - rules
    assert "train" not in grouped  # a failed group deletes its jobs' outputs: no training in it


def test_only_training_is_submitted_per_model(tiny_dry_run):
    """Every ungrouped job with a model wildcard is a training; the rest of the tiny study
    is one group job, whose members all ask for the `serial` unit that stacks them."""
    per_model = {rule for rule, wildcards in BLOCK.findall(tiny_dry_run) if "model=" in wildcards}
    assert per_model == {"train"}, per_model
    assert tiny_dry_run.count("Group job after_training") == 1
    member_resources = re.findall(r"^        resources: (.*)$", tiny_dry_run, re.MULTILINE)
    assert member_resources and all("serial=1" in r for r in member_resources)


def test_submission_count_of_the_tiny_study(tiny_dry_run):
    """benchmarks/dag.py's count on the tiny study: 4 trainings + 1 group job."""
    local = {"all", "prepare_dataset", "collect", "kendall"} | set(
        re.findall(r"^rule ((?:figure|table_html)_[A-Za-z0-9_]+):$", tiny_dry_run, re.MULTILINE))
    ungrouped, groups = count_submissions(tiny_dry_run, local)
    assert dict(ungrouped) == {"train": 4}, ungrouped
    assert dict(groups) == {"after_training": 1}, groups
