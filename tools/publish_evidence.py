"""Run the CPU evidence study and publish its results in docs/evidence/ (`make evidence`).

1. ``snakemake --configfile config/evidence.yaml``: the whole study (trains only what is
   missing).
2. For each study, its tables (kendall.md/csv, cmi.md, models.csv) and Figures 3-5 are
   copied to ``docs/evidence/<study>/``.
3. The same tables ranking only the models that fit their training set
   (``analysis.min_train_acc: 0.99``, the paper's regime): the config with that key set
   is written to ``results/evidence_fitting.yaml`` and only the tables are rerun, then
   copied to ``docs/evidence/<study>/fitting/`` (Snakemake's code trigger off: an updated
   rule script retrains nothing here). Results/ is left with these tables; the
   next plain run of config/evidence.yaml reruns its tables (a changed parameter), nothing else.

    python tools/publish_evidence.py [--cores N] [--skip-run]
"""

from __future__ import annotations

import argparse
import copy
import shutil
import subprocess
import sys
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parents[1]
CONFIG = ROOT / "config" / "evidence.yaml"
DOCS = ROOT / "docs" / "evidence"
TABLES = ("kendall.md", "kendall.csv", "cmi.md", "models.csv")
FIGURES = ("fig3.png", "fig4.png", "fig5.png")
FIT = 0.99  # notes.FIT_ACCURACY, the threshold of the tables' fit note


def snakemake(config: Path, cores: str, *targets: str, options: tuple[str, ...] = ()) -> None:
    # targets before --configfile, which takes every value after it
    subprocess.run([sys.executable, "-m", "snakemake", *targets, *options, "--cores", cores,
                    "--configfile", str(config)], cwd=ROOT, check=True)


def copy_files(study: str, names, source: str, target: Path) -> None:
    target.mkdir(parents=True, exist_ok=True)
    for name in names:
        shutil.copy2(ROOT / "results" / study / source / name, target / name)


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--cores", default="all")
    parser.add_argument("--skip-run", action="store_true", help="publish the results already in results/")
    args = parser.parse_args(argv)
    config = yaml.safe_load(CONFIG.read_text())
    studies = list(config["studies"])
    if not args.skip_run:
        snakemake(CONFIG, args.cores)
    for study in studies:
        copy_files(study, TABLES, "tables", DOCS / study)
        copy_files(study, FIGURES, "figures", DOCS / study)
    fitting = copy.deepcopy(config)
    for settings in fitting["studies"].values():
        settings.setdefault("analysis", {})["min_train_acc"] = FIT
    path = ROOT / "results" / "evidence_fitting.yaml"
    path.write_text(yaml.safe_dump(fitting, sort_keys=False))
    # the tables only: a rule script changed by an update of this project must not retrain
    snakemake(path, args.cores, *(f"results/{s}/tables/kendall.md" for s in studies),
              options=("--rerun-triggers", "mtime", "params", "input", "software-env"))
    for study in studies:
        copy_files(study, ("kendall.md", "kendall.csv", "cmi.md"), "tables", DOCS / study / "fitting")
    print(f"published {', '.join(studies)} in {DOCS.relative_to(ROOT)}/")


if __name__ == "__main__":
    main()
