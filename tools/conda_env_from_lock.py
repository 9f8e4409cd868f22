"""Write envs/intraclass.yaml (the environment of every rule under `snakemake --sdm conda`)
from requirements.lock, so that conda users install exactly the lock's pins, environment
markers included (pip evaluates them inside the conda environment). `make lock` runs this
after resolving the lock; tests/test_lock.py checks that the two agree.

Usage: python tools/conda_env_from_lock.py [requirements.lock] [envs/intraclass.yaml]
"""

import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
HEADER = """\
# Software environment of every rule, for `snakemake --sdm conda` on clusters.
# Written by tools/conda_env_from_lock.py from requirements.lock (`make lock`): the same
# pins, with their environment markers; do not edit by hand. Python packages come from
# PyPI through pip so that the versions are exactly those of the lock. The workflow puts
# this checkout's src/ on PYTHONPATH, so the intraclass package itself needs no install.
name: intraclass
channels:
  - conda-forge
dependencies:
  - python=3.11
  - pip
  - pip:
"""


def lock_requirements(lock_text: str) -> list[str]:
    """The requirement lines of a pip lock (``name==version`` with an optional marker),
    without comments, hashes or continuation lines."""
    lines = []
    for line in lock_text.splitlines():
        line = line.strip()
        if line and not line.startswith(("#", "-")):
            lines.append(line)
    return lines


def environment_yaml(requirements: list[str]) -> str:
    # quoted: a marker contains characters YAML would otherwise read as syntax
    return HEADER + "".join(f'      - "{r}"\n' for r in requirements)


def main(argv: list[str]) -> None:
    lock = Path(argv[1]) if len(argv) > 1 else ROOT / "requirements.lock"
    out = Path(argv[2]) if len(argv) > 2 else ROOT / "envs" / "intraclass.yaml"
    out.write_text(environment_yaml(lock_requirements(lock.read_text())))
    print(f"wrote {out} ({len(lock_requirements(lock.read_text()))} pins from {lock})")


if __name__ == "__main__":
    main(sys.argv)
