"""Time to build the paper's DAG (528 trainings and everything downstream) with `snakemake -n`.

Issue 2's target: well under 15 s on a 2-core machine. Prints the wall time of the dry
run, the number of jobs, and the ratio to that budget. Run: python benchmarks/dag.py
"""

import re
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
BUDGET_S = 15.0


def main() -> None:
    with tempfile.TemporaryDirectory() as workdir:
        cmd = [sys.executable, "-m", "snakemake", "-n", "--quiet", "rules", "--cores", "1",
               "-s", str(ROOT / "Snakefile"), "-d", workdir, "--configfile", str(ROOT / "config" / "paper.yaml")]
        start = time.perf_counter()
        proc = subprocess.run(cmd, capture_output=True, text=True)
        elapsed = time.perf_counter() - start
    if proc.returncode:
        sys.exit(proc.stdout + proc.stderr)
    total = re.search(r"^total\s+(\d+)", proc.stdout + proc.stderr, re.M)
    print(f"paper DAG: {total.group(1) if total else '?'} jobs built in {elapsed:.1f} s "
          f"(budget {BUDGET_S:.0f} s; ratio {elapsed / BUDGET_S:.2f} of budget)")


if __name__ == "__main__":
    main()
