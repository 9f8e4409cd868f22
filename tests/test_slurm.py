"""`snakemake --profile slurm`, unchanged, on a real one-node SLURM cluster.

tests/slurm/cluster.sh installs (apt, root, Debian) and starts munged, slurmctld and slurmd
on localhost with a fake GPU; the tiny study (tests/configs/tiny.yaml) then runs from the
repository root exactly as a user types it, plus the test-only overrides of
tests/slurm/profile (status via squeue: this cluster has no accounting; short polls) and
of tests/slurm/short_train.yaml (a 1-minute time limit for training), in the README's two
steps (the dataset, then the study). One model's training outlasts that limit
(tests/slurm/hooks/sitecustomize.py sleeps after its first epoch).

The test checks what the profile promises: each training is one sbatch job and
everything after training is one group job (profile `groups`, `group-components`) that
asks for one GPU and for the sum of its jobs' runtimes; the analysis runs locally; the
slow training is killed by SLURM at its 1-minute limit (TIMEOUT), resubmitted with a
2-minute limit (runtime x attempt) and resumes from its resume.pt; every other job
completed in SLURM; the study is complete; the daemons it started are gone afterwards.
Where no cluster can be started (not root, not Debian, no apt, daemons failing) it is
skipped with the reason, unless INTRACLASS_REQUIRE_SLURM=1 (CI) turns the skip into a
failure.

    make test-slurm     (this test alone; root on Debian)
"""

from __future__ import annotations

import json
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
SHORT_TRAIN = REPO / "tests" / "slurm" / "short_train.yaml"
HOOKS = REPO / "tests" / "slurm" / "hooks"
STUDY = "tiny"
DATASET_FILE = "results/data/fashion_mnist_small.npz"  # the tiny study's dataset
# The model whose training outlasts its first time limit, and how long it sleeps after
# epoch 1: longer than the 1-minute limit plus slurmctld's time-limit check (every 30 s)
# and KillWait (30 s), so SLURM always kills it during the sleep.
SLOW_MODEL = "lr0.05-wd0-bs64-adam-do0-aug0-w1-d1-s0"
SLEEP_S = 300
# The group of everything after training (profiles/slurm/config.yaml, `groups`).
GROUP = "after_training"
GROUPED_RULES = {"extract", "measures", "sharpness"}
# Rules that run where Snakemake runs (localrule: True / localrules).
LOCAL_RULES = {"all", "prepare_dataset", "collect", "kendall"}
RUN_TIMEOUT_S = 900

SUBMITTED = re.compile(
    r"Job (\S+) has been submitted with SLURM jobid (\d+) \(log: .*/(rule|group)_([A-Za-z0-9_]+)/"
)
# Job blocks Snakemake prints: ungrouped ones at the margin, a group's members indented;
# with the block's wildcards (a block may be printed more than once: retries, updates).
JOB_BLOCK = re.compile(r"^( *)(local)?rule ([A-Za-z0-9_]+):\n(?:\1 .*\n)*?\1    wildcards: (.*)$",
                       re.MULTILINE)
GROUP_HEADER = re.compile(r"Group job ([A-Za-z0-9_]+) \(jobs in lexicogr\. order\):")


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


def minutes(limit: str) -> int:
    """SLURM's TimeLimit ([D-]HH:MM:SS) in minutes."""
    days, _, clock = limit.rpartition("-")
    h, m, sec = (int(x) for x in clock.split(":"))
    return (int(days or 0) * 24 + h) * 60 + m + (sec > 0)


def gpus_requested(job: dict[str, str]) -> int:
    """GPUs of a job's request (TresPerJob gres:gpu:N or gres/gpu=N; 0 when none)."""
    tres = job.get("TresPerJob", "") + "," + job.get("TresPerNode", "")
    found = re.findall(r"gpu[:=](\d+)", tres)
    return sum(int(n) for n in found)


def run_tiny_study(state: Path, workdir: Path) -> tuple[subprocess.CompletedProcess, dict]:
    """Start the cluster, run the tiny study through the profile, stop the cluster (and
    check that its daemons are gone). Returns the run and SLURM's jobs (before the stop)."""
    # Two fake GPUs on a (usually) 2-core node: two GPU jobs can run side by side.
    env = {**os.environ, "INTRACLASS_SLURM_DIR": str(state), "INTRACLASS_SLURM_GPUS": "2",
           "PYTHONPATH": os.pathsep.join(p for p in (str(HOOKS), os.environ.get("PYTHONPATH")) if p),
           "INTRACLASS_TEST_SLOW_MODEL": SLOW_MODEL, "INTRACLASS_TEST_SLEEP_S": str(SLEEP_S)}
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

        command = ["timeout", "-k", "10", RUN_TIMEOUT_S, sys.executable, "-m", "snakemake",
                   "--profile", "slurm", "--profile", "tests/slurm/profile",
                   "--configfile", TINY, SHORT_TRAIN, "--directory", workdir]
        # The README's two steps: the dataset first (a local job), then the study. With the
        # prepare_dataset checkpoint still pending, Snakemake 9.27 replaces the jobs that
        # depend on it inside already formed groups (it crashes, or counts them twice).
        prepared = sh(*command, DATASET_FILE, env=env, timeout=RUN_TIMEOUT_S + 30)
        assert prepared.returncode == 0, (prepared.stdout + prepared.stderr)[-4000:]
        assert "has been submitted with SLURM jobid" not in prepared.stdout + prepared.stderr
        run = sh(*command, env=env, timeout=RUN_TIMEOUT_S + 30)
        jobs = slurm_jobs(env)
    finally:
        stopped = sh(CLUSTER, "stop", env=env, timeout=120)

    # The daemons this test started are gone, whatever happened above.
    assert stopped.returncode == 0, stopped.stderr
    assert set(pids) == {"munged", "slurmctld", "slurmd"}, pids
    assert not [name for name, pid in pids.items() if pid_alive(pid)], "daemons survived stop"
    assert not (Path("/etc/slurm/slurm.conf")).exists() or "intraclass" not in \
        Path("/etc/slurm/slurm.conf").read_text(), "the test cluster's slurm.conf was left behind"
    return run, jobs


def test_tiny_study_runs_in_groups_with_retries_that_get_longer(cluster_state, tmp_path_factory):
    reason = why_no_slurm()
    if reason:
        skip_or_fail(reason)
    # The profile as users call it: `--profile slurm` from the repository root.
    assert (REPO / "slurm" / "config.yaml").is_file(), "the root `slurm` profile link is missing"
    workdir = tmp_path_factory.mktemp("slurm-run")  # results/ of the checkout stay untouched
    run, jobs = run_tiny_study(cluster_state, workdir)
    log = run.stdout + run.stderr
    assert run.returncode == 0, f"snakemake --profile slurm failed (rc {run.returncode}):\n{log[-6000:]}"

    # Jobs (rule, wildcards): trainings at the margin (one sbatch each), the rest in a group.
    blocks = set(JOB_BLOCK.findall(log))
    local = {name for indent, is_local, name, _ in blocks if is_local}
    remote = Counter(name for indent, is_local, name, _ in blocks if not is_local and not indent)
    grouped = Counter(name for indent, is_local, name, _ in blocks if not is_local and indent)
    assert local <= LOCAL_RULES | {n for n in local if n.startswith(("figure_", "table_html_"))}, local
    assert {"collect", "kendall", "table_html_kendall"} <= local, local
    assert set(remote) == {"train"}, f"ungrouped cluster jobs other than training: {remote}"
    assert remote["train"] == 4, remote
    assert set(grouped) >= GROUPED_RULES, grouped
    assert grouped["extract"] == 5 and grouped["measures"] == 4 and grouped["sharpness"] == 4, grouped
    assert GROUP_HEADER.findall(log) == [GROUP], "the tiny study should fit one group job"

    # Through sbatch: 5 trainings (one of them twice: killed at its limit, then retried)
    # and 1 group job.
    submissions = SUBMITTED.findall(log)
    kinds = Counter((kind, name) for _, _, kind, name in submissions)
    group_name = next(name for kind, name in kinds if kind == "group")
    assert group_name.startswith(GROUP), kinds
    assert kinds[("group", group_name)] == 1 and kinds[("rule", "train")] >= 5, kinds
    assert len(kinds) == 2, kinds
    assert "Trying to restart job" in log

    # What SLURM did with them: per model, the trainings in submission order.
    by_model: dict[str, list[dict]] = {}
    group_ids = []
    for _, slurm_id, kind, _ in sorted(submissions, key=lambda sub: int(sub[1])):
        assert slurm_id in jobs, f"SLURM never knew job {slurm_id} ({kind})"
        if kind == "group":
            group_ids.append(slurm_id)
            continue
        model = jobs[slurm_id]["Comment"].rsplit(f"{STUDY}_", 1)[-1]
        by_model.setdefault(model, []).append(jobs[slurm_id])
        assert gpus_requested(jobs[slurm_id]) == 1, jobs[slurm_id].get("TresPerJob")
    assert len(by_model) == 4 and all(runs[-1]["JobState"] == "COMPLETED" for runs in by_model.values()), \
        {m: [r["JobState"] for r in runs] for m, runs in by_model.items()}
    slow = by_model[SLOW_MODEL]
    # killed at its limit, then resubmitted with runtime x attempt: 1 minute, then 2
    # (tests/slurm/short_train.yaml; attempt_runtime in workflow/rules/common.smk)
    assert [r["JobState"] for r in slow] == ["TIMEOUT", "COMPLETED"], [r["JobState"] for r in slow]
    assert [minutes(r["TimeLimit"]) for r in slow] == [1, 2], [r["TimeLimit"] for r in slow]

    group = jobs[group_ids[0]]
    assert group["JobState"] == "COMPLETED", group["JobState"]
    # One GPU for all its GPU jobs (they run one after another), one CPU (each job's
    # threads), and the sum of the member jobs' runtimes (10 minutes each in tiny.yaml).
    members = sum(grouped.values())
    assert gpus_requested(group) == 1, group.get("TresPerJob")
    assert group["NumCPUs"] == "1", group["NumCPUs"]
    assert minutes(group["TimeLimit"]) == 10 * members, (group["TimeLimit"], members)

    # The retried training resumed after the epoch its killed attempt had saved.
    model_dir = workdir / "results" / STUDY / "models" / SLOW_MODEL
    train_log = (workdir / "results" / "logs" / STUDY / "train" / f"{SLOW_MODEL}.log").read_text()
    assert "resuming from" in train_log and "after epoch 1" in train_log, train_log[-3000:]
    metrics = json.loads((model_dir / "metrics.json").read_text())
    assert metrics["resumed_from_epoch"] == 1, metrics["resumed_from_epoch"]
    assert not (model_dir / "resume.pt").exists()

    # The study is complete: a dry run finds nothing to do, and its tables are there.
    results = workdir / "results" / STUDY
    for ext in ("csv", "md", "tex", "html"):
        assert (results / "tables" / f"kendall.{ext}").stat().st_size > 0
    dry = sh(sys.executable, "-m", "snakemake", "-n", "--configfile", TINY, SHORT_TRAIN,
             "--directory", workdir, timeout=300)
    assert dry.returncode == 0, dry.stderr[-3000:]
    assert "Nothing to be done" in dry.stdout + dry.stderr, (dry.stdout + dry.stderr)[-3000:]
