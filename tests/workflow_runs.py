"""Snakemake dry runs of the workflow for the tests: one helper, so that every test reads the
planned jobs the same way."""

import re
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
SNAKEMAKE = [sys.executable, "-m", "snakemake"]


def dry_run(*args, cwd=ROOT):
    """Run `snakemake -n` and return (returncode, {rule: job count}, combined output)."""
    proc = subprocess.run(
        [*SNAKEMAKE, "-n", "--quiet", "rules", "--cores", "1", "-s", str(ROOT / "Snakefile"), *args],
        cwd=cwd, capture_output=True, text=True, timeout=300,
    )
    out = proc.stdout + proc.stderr
    counts = {m.group(1): int(m.group(2)) for m in re.finditer(r"^(\w+)\s+(\d+)\s*$", out, re.M)}
    return proc.returncode, counts, out
