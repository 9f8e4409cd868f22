"""The paper's DAG (528 trainings and everything downstream) under `--profile slurm`:
how long `snakemake -n` takes to build it, and how many cluster submissions it makes.

Issue 2's target: well under 15 s on a 2-core machine; issue 18's: under 600 submissions.
A submission is a group job of the profile (`groups`, `group-components`; printed as
"Group job ...") or an ungrouped job of a rule that is not local (`localrule: True`,
`localrules:`): local jobs run where Snakemake runs. Run: python benchmarks/dag.py
[--configfile config/paper.yaml]
"""

import argparse
import re
import subprocess
import sys
import tempfile
import time
from collections import Counter
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
BUDGET_S = 15.0
TARGET_SUBMISSIONS = 600
# A job block at the margin (ungrouped) or indented (inside a group job).
JOB_HEADER = re.compile(r"^( *)(?:local)?(?:rule|checkpoint) ([A-Za-z0-9_]+):$", re.MULTILINE)
GROUP_HEADER = re.compile(r"Group job ([A-Za-z0-9_]+) \(jobs in lexicogr\. order\):")


def local_rules(configfile: Path, workdir: str) -> set[str]:
    """Names of the workflow's local rules (loaded through Snakemake's API, not timed)."""
    from snakemake.api import SnakemakeApi
    from snakemake.settings.types import ConfigSettings, OutputSettings, ResourceSettings, StorageSettings

    with SnakemakeApi(OutputSettings(quiet={"all"})) as api:
        workflow = api.workflow(resource_settings=ResourceSettings(), storage_settings=StorageSettings(),
                                config_settings=ConfigSettings(configfiles=[configfile]),
                                snakefile=ROOT / "Snakefile", workdir=Path(workdir))._workflow
        return {r.name for r in workflow.rules if r.name in workflow._localrules or r.norun}


def count_submissions(dry_run_output: str, local: set[str]) -> tuple[Counter, Counter]:
    """(ungrouped cluster jobs per rule, group jobs per group) of a dry run's output."""
    ungrouped = Counter(name for indent, name in JOB_HEADER.findall(dry_run_output)
                        if not indent and name not in local)
    return ungrouped, Counter(GROUP_HEADER.findall(dry_run_output))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--configfile", type=Path, default=ROOT / "config" / "paper.yaml")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as workdir:
        cmd = [sys.executable, "-m", "snakemake", "-n", "--profile", str(ROOT / "profiles" / "slurm"),
               "-s", str(ROOT / "Snakefile"), "-d", workdir, "--configfile", str(args.configfile)]
        # timed: the DAG alone (--quiet rules prints only the job counts)
        start = time.perf_counter()
        quiet = subprocess.run([*cmd, "--quiet", "rules"], capture_output=True, text=True, cwd=ROOT)
        elapsed = time.perf_counter() - start
        # not timed: every job block, with the group jobs, to count the submissions
        proc = subprocess.run(cmd, capture_output=True, text=True, cwd=ROOT)
        for run in (quiet, proc):
            if run.returncode:
                sys.exit(run.stdout[-5000:] + run.stderr[-5000:])
        local = local_rules(args.configfile, workdir)
    output = proc.stdout + proc.stderr
    total = re.search(r"^total\s+(\d+)", output, re.M)
    ungrouped, groups = count_submissions(output, local)
    submissions = sum(ungrouped.values()) + sum(groups.values())
    print(f"{args.configfile.name}: {total.group(1) if total else '?'} jobs, DAG built in {elapsed:.1f} s "
          f"(budget {BUDGET_S:.0f} s; ratio {elapsed / BUDGET_S:.2f} of budget)")
    print(f"cluster submissions with --profile slurm: {submissions} (target < {TARGET_SUBMISSIONS}): "
          + ", ".join(f"{n} {rule}" for rule, n in ungrouped.items())
          + "".join(f", {n} group jobs {g}" for g, n in groups.items())
          + f"; local rules: {', '.join(sorted(local))}")


if __name__ == "__main__":
    main()
