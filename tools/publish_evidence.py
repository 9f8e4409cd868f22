"""Run the CPU evidence study and publish its results in docs/evidence/ (`make evidence`).

1. ``snakemake --configfile config/evidence.yaml``: the whole study (trains only what is
   missing; with Snakemake's code trigger off, as below).
2. For each study, its tables (kendall.md/csv, cmi.md, models.csv) and Figures 3-5 are
   copied to ``docs/evidence/<study>/``.
3. Variants that rerun only what their setting touches, each under a config written to
   ``results/evidence_<variant>.yaml`` and published in ``docs/evidence/<study>/<variant>/``
   (tables only; Snakemake's code trigger off, so that an updated rule script retrains
   nothing):

   - ``fitting``: only the models that fit their training set are ranked
     (``analysis.min_train_acc: 0.99``, the paper's regime); reruns the tables;
   - ``relative``: the sharpness searches target each model's own training accuracy minus
     0.1 (``sharpness.target_mode: relative``, Jiang et al. 2020) instead of the authors'
     0.9, which models that train below 90% cannot reach; reruns sharpness and the tables.

   results/ is left as the last variant made it; the next plain run of
   config/evidence.yaml reruns what that variant changed, nothing else.

    python tools/publish_evidence.py [--cores N] [--variants fitting relative]
"""

from __future__ import annotations

import argparse
import copy
import shutil
import subprocess
import sys
from pathlib import Path

import yaml

from intraclass.evaluation.notes import FIT_ACCURACY

ROOT = Path(__file__).resolve().parents[1]
CONFIG = ROOT / "config" / "evidence.yaml"
DOCS = ROOT / "docs" / "evidence"
TABLES = ("kendall.md", "kendall.csv", "cmi.md", "models.csv")
FIGURES = ("fig3.png", "fig4.png", "fig5.png")
# Snakemake's rerun triggers but "code": an update of this project's rule scripts retrains nothing
NO_CODE_TRIGGER = ("--rerun-triggers", "mtime", "params", "input", "software-env")
# variant -> settings merged into every study (module doc)
VARIANTS = {
    "fitting": {"analysis": {"min_train_acc": FIT_ACCURACY}},  # the tables' fit-note threshold
    "relative": {"sharpness": {"target_mode": "relative"}},
}


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
    parser.add_argument("--variants", nargs="*", choices=list(VARIANTS), default=list(VARIANTS),
                        help="which variants to make (default: all)")
    args = parser.parse_args(argv)
    config = yaml.safe_load(CONFIG.read_text())
    studies = list(config["studies"])
    # the study itself (also after a variant: puts back what the variant changed)
    snakemake(CONFIG, args.cores, options=NO_CODE_TRIGGER)
    for study in studies:
        copy_files(study, TABLES, "tables", DOCS / study)
        copy_files(study, FIGURES, "figures", DOCS / study)
    for variant in args.variants:
        settings = VARIANTS[variant]
        derived = copy.deepcopy(config)
        for study in derived["studies"].values():
            for key, values in settings.items():
                study.setdefault(key, {}).update(values)
        path = ROOT / "results" / f"evidence_{variant}.yaml"
        path.write_text(yaml.safe_dump(derived, sort_keys=False))
        snakemake(path, args.cores, *(f"results/{s}/tables/kendall.md" for s in studies), options=NO_CODE_TRIGGER)
        for study in studies:
            copy_files(study, ("kendall.md", "kendall.csv", "cmi.md"), "tables", DOCS / study / variant)
    print(f"published {', '.join(studies)} in {DOCS.relative_to(ROOT)}/")


if __name__ == "__main__":
    main()
