"""`snakemake --profile slurm`, unchanged, on a real one-node SLURM cluster.

tests/slurm/cluster.sh installs (apt, root, Debian) and starts munged, slurmctld and slurmd
on localhost with a fake GPU; the tiny study (tests/configs/tiny.yaml) then runs from the
repository root exactly as a user types it, plus the test-only overrides of
tests/slurm/profile (status via squeue: this cluster has no accounting; short polls). The
test checks that every non-local job went through sbatch and completed in SLURM, that the
GPU rules (and only they) asked for a GPU, that the study is complete, and that the
daemons it started are gone afterwards. Where no cluster can be started (not root, not
Debian, no apt, daemons failing) it is skipped with the reason, unless
INTRACLASS_REQUIRE_SLURM=1 (CI) turns the skip into a failure.

    make test-slurm     (this test alone; root on Debian)
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
import tempfile
from collections import Counter
from pathlib import Path

import pytest

pytestmark = [pytest.mark.slurm, pytest.mark.slow]

REPO = Path(__file__).resolve().parents[1]
CLUSTER = REPO / "tests" / "slurm" / "cluster.sh"
TINY = REPO / "tests" / "configs" / "tiny.yaml"
STUDY = "tiny"
# Rules that declare `gpu=` (workflow/rules: train, activations, sharpness) and the
# rules that must run as SLURM jobs (everything but the local prepare_dataset and all).
GPU_RULES = {"train", "extract", "sharpness"}
REMOTE_RULES = GPU_RULES | {"measures", "collect", "kendall"}
RUN_TIMEOUT_S = 900

SUBMITTED = re.compile(
    r"Job (\d+) has been submitted with SLURM jobid (\d+) \(log: .*/rule_([A-Za-z0-9_]+)/"
)
JOB_HEADER = re.compile(r"^(local)?rule ([A-Za-z0-9_]+):$", re.MULTILINE)


def why_no_slurm() -> str | None:
    """Why a SLURM cluster cannot be started on this machine, or None if it can be tried."""
    if not sys.platform.startswith("linux"):
        return "the test cluster needs Linux"
    if os.geteuid() != 0:
        return "needs root to install and start the SLURM daemons (`make test-slurm` as root on Debian, as in CI)"
    if not Path("/etc/debian_version").exists():
        return "the test cluster is installed from Debian packages (munge slurmctld slurmd slurm-client)"
    if shutil.which("slurmctld") is None and shutil.which("apt-get") is None:
        return "SLURM is not installed and there is no apt-get to install it"
    return None


def skip_or_fail(reason: str) -> None:
    if os.environ.get("INTRACLASS_REQUIRE_SLURM") == "1":
        pytest.fail(f"INTRACLASS_REQUIRE_SLURM=1 but {reason}")
    pytest.skip(reason)


def sh(*args: str | os.PathLike, env: dict | None = None, timeout: float = 300,
       cwd: Path = REPO) -> subprocess.CompletedProcess:
    return subprocess.run([str(a) for a in args], cwd=cwd, env=env, capture_output=True,
                          text=True, timeout=timeout)


def pid_alive(pid: int) -> bool:
    """A running process (a zombie awaiting its parent's wait() is not running)."""
    try:
        status = Path(f"/proc/{pid}/status").read_text()
    except FileNotFoundError:
        return False
    return not re.search(r"^State:\s+Z", status, re.MULTILINE)


def daemon_pids(state: Path) -> dict[str, int]:
    files = {"munged": state / "munge" / "munged.pid",
             "slurmctld": state / "run" / "slurmctld.pid",
             "slurmd": state / "run" / "slurmd.pid"}
    return {name: int(f.read_text()) for name, f in files.items() if f.exists()}


def slurm_jobs(env: dict) -> dict[str, dict[str, str]]:
    """Every job slurmctld still knows (finished ones stay MinJobAge = 300 s): id -> fields."""
    out = sh("scontrol", "-o", "show", "job", env=env, timeout=60)
    assert out.returncode == 0, out.stderr
    jobs = {}
    for line in out.stdout.splitlines():
        fields = dict(f.split("=", 1) for f in line.split() if "=" in f)
        if "JobId" in fields:
            jobs[fields["JobId"]] = fields
    return jobs


@pytest.fixture
def cluster_state():
    """The test cluster's state directory (configs' paths, pid files, logs, munge socket).

    The daemons run as the users munge and slurm, so it must be reachable by them
    (pytest's own temporary directories are private to root). Afterwards, whatever
    happened: `cluster.sh stop` (it stops only the pids recorded here, so it is a no-op
    when the test already stopped them) and the directory is removed."""
    state = Path(tempfile.mkdtemp(prefix="intraclass-slurm-"))
    state.chmod(0o755)
    yield state
    sh(CLUSTER, "stop", env={**os.environ, "INTRACLASS_SLURM_DIR": str(state)}, timeout=120)
    shutil.rmtree(state, ignore_errors=True)


def test_tiny_study_runs_through_sbatch_with_the_unchanged_profile(cluster_state, tmp_path_factory):
    reason = why_no_slurm()
    if reason:
        skip_or_fail(reason)
    # The profile as users call it: `--profile slurm` from the repository root.
    assert (REPO / "slurm" / "config.yaml").is_file(), "the root `slurm` profile link is missing"

    state = cluster_state
    workdir = tmp_path_factory.mktemp("slurm-run")  # results/ of the checkout stay untouched
    # Two fake GPUs on a (usually) 2-core node: two GPU jobs can run side by side.
    env = {**os.environ, "INTRACLASS_SLURM_DIR": str(state), "INTRACLASS_SLURM_GPUS": "2"}
    env.pop("SLURM_CONF", None)

    installed = sh(CLUSTER, "install", env=env, timeout=600)
    if installed.returncode != 0:
        skip_or_fail(f"could not install SLURM: {installed.stderr.strip()[-500:]}")
    started = sh(CLUSTER, "start", env=env, timeout=120)
    if started.returncode != 0:
        skip_or_fail(f"SLURM daemons did not start: {started.stderr.strip()[-800:]}")

    pids = daemon_pids(state)
    try:
        # A GPU request must schedule on the fake GPU before the workflow is worth running.
        probe = sh("sbatch", "--parsable", "--gpus=1", "--wrap", "true", env=env, cwd=workdir)
        assert probe.returncode == 0, f"sbatch --gpus=1 refused: {probe.stderr}"

        run = sh("timeout", "-k", "10", RUN_TIMEOUT_S, sys.executable, "-m", "snakemake",
                 "--profile", "slurm", "--profile", "tests/slurm/profile",
                 "--configfile", TINY, "--directory", workdir,
                 env=env, timeout=RUN_TIMEOUT_S + 30)
        log = run.stdout + run.stderr
        jobs = slurm_jobs(env)
    finally:
        stopped = sh(CLUSTER, "stop", env=env, timeout=120)

    # The daemons this test started are gone, whatever happened above.
    assert stopped.returncode == 0, stopped.stderr
    assert set(pids) == {"munged", "slurmctld", "slurmd"}, pids
    assert not [name for name, pid in pids.items() if pid_alive(pid)], "daemons survived stop"
    assert not (Path("/etc/slurm/slurm.conf")).exists() or "intraclass" not in \
        Path("/etc/slurm/slurm.conf").read_text(), "the test cluster's slurm.conf was left behind"

    tail = log[-6000:]
    assert run.returncode == 0, f"snakemake --profile slurm failed (rc {run.returncode}):\n{tail}"

    # Every non-local job block Snakemake printed was submitted with sbatch...
    headers = JOB_HEADER.findall(log)
    remote_blocks = Counter(name for local, name in headers if not local)
    local_rules = {name for local, name in headers if local}
    submissions = SUBMITTED.findall(log)
    submitted = Counter(rule for _, _, rule in submissions)
    assert submitted == remote_blocks, (submitted, remote_blocks)
    assert set(submitted) >= REMOTE_RULES, f"rules that never went through sbatch: {REMOTE_RULES - set(submitted)}"
    assert local_rules <= {"all", "prepare_dataset"}, f"unexpected local jobs: {local_rules}"
    # ...one sbatch per job of the tiny study (4 models, 1 evolution checkpoint)...
    assert submitted["train"] == 4 and submitted["measures"] == 4, submitted
    assert submitted["extract"] == 5, submitted

    # ...and SLURM itself ran each of them to completion, with a GPU exactly for GPU rules.
    for _, slurm_id, rule in submissions:
        assert slurm_id in jobs, f"SLURM never knew job {slurm_id} ({rule})"
        job = jobs[slurm_id]
        assert job["JobState"] == "COMPLETED", (rule, job["JobState"])
        gpu_request = "gpu" in job.get("TresPerJob", "") + job.get("TresPerNode", "")
        assert gpu_request == (rule in GPU_RULES), (rule, job.get("TresPerJob"))

    # The study is complete: a dry run finds nothing to do, and its tables are there.
    results = workdir / "results" / STUDY
    for ext in ("csv", "md", "tex"):
        assert (results / "tables" / f"kendall.{ext}").stat().st_size > 0
    dry = sh(sys.executable, "-m", "snakemake", "-n", "--configfile", TINY,
             "--directory", workdir, timeout=300)
    assert dry.returncode == 0, dry.stderr[-3000:]
    assert "Nothing to be done" in dry.stdout + dry.stderr, (dry.stdout + dry.stderr)[-3000:]
