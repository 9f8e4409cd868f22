"""Designs of the default study, compared by measurement: which small study says the most
within the default study's budget (15 minutes on a 2-core CPU)?

Each design is the default study of ``config/config.yaml`` with a few keys changed (the
``DESIGNS`` below). With ``--run``, every design is written to
``results/designs/<design>.yaml`` as a complete config with one study, ``design_<design>``,
and run end to end (``snakemake --cores N --configfile ...``) with its wall time recorded
in ``results/designs/<design>.wall_s``. Then (with or without ``--run``) the script reads
each design's ``tables/models.csv`` and ``tables/kendall.csv`` and prints, as Markdown:

* how many models fit their training set (training accuracy >= ``--fit``, default 0.99),
  the range of training and test accuracies;
* the noise floor: the share of the within-group model pairs whose test accuracies differ
  by less than 2 standard errors (the table notes' figure);
* the width of the 95% bootstrap intervals: the median over the intervention-axis cells
  and over the totals of the measures, and how many cells' intervals exclude 0;
* each measure's total with its interval.

Examples::

    python benchmarks/default_designs.py --run                    # every design, ~1 hour
    python benchmarks/default_designs.py --run --designs coarse8 fine20   # some of them
    python benchmarks/default_designs.py                          # the summary only
"""

from __future__ import annotations

import argparse
import copy
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pandas as pd
import yaml

from intraclass import kendall
from intraclass.evaluation.notes import FIT_ACCURACY, below_fit, pair_noise, split_usable
from intraclass.names import AXES
from intraclass.tables import read_table

ROOT = Path(__file__).resolve().parents[1]
RESULTS = ROOT / "results"

# Each design states its label level, training-set size and epochs in full, so that the
# comparison does not depend on which one is the default today. Milestones at about 0.6,
# 0.9 and 0.95 of the epochs (appendix A.3's 150/230/240 of 250, scaled).
TWENTY_EPOCHS = {"train_per_class": 150, "epochs": 20, "lr_milestones": [12, 18, 19]}

# design name -> (what it is, in words; overrides of the default study, merged key by key)
DESIGNS: dict[str, tuple[str, dict]] = {
    "coarse8": ("coarse labels, 150 images per class, 8 epochs (the default until 2026-11-30)",
                {"labels": "coarse", "training": {"train_per_class": 150, "epochs": 8, "lr_milestones": [6, 7]}}),
    "coarse20": ("coarse labels, 150 images per class, 20 epochs",
                 {"labels": "coarse", "training": TWENTY_EPOCHS}),
    "fine20": ("fine labels (c3, c4 only), 150 images per class, 20 epochs",
               {"labels": "fine", "training": TWENTY_EPOCHS}),
    "fine20rel": ("fine20 with the sharpness searches' relative target (own training accuracy - 0.1) and 8 "
                  "bisection steps for alpha (the default since 2026-11-30)",
                  {"labels": "fine", "training": TWENTY_EPOCHS,
                   "sharpness": {"target_mode": "relative", "alpha": {"max_steps": 8}}}),
    "coarse400": ("coarse labels, 400 images per class, 12 epochs",
                  {"labels": "coarse", "training": {"train_per_class": 400, "epochs": 12, "lr_milestones": [7, 11]}}),
}
#: The design config/config.yaml's study is (tests/test_configs_studies.py checks it).
DEFAULT = "fine20rel"


def merged(base: dict, overrides: dict) -> dict:
    """``base`` with ``overrides`` merged into it key by key (nested dicts merged, other
    values replaced); neither argument is changed."""
    out = copy.deepcopy(base)
    for key, value in overrides.items():
        if isinstance(value, dict) and isinstance(out.get(key), dict):
            out[key] = merged(out[key], value)
        else:
            out[key] = copy.deepcopy(value)
    return out


def design_config(name: str, default_config: Path = ROOT / "config" / "config.yaml") -> dict:
    """The complete config of one design: the default config with its one study replaced by
    ``design_<name>``, the default study with the design's overrides."""
    config = yaml.safe_load(default_config.read_text())
    (study,) = config["studies"].values()
    config["studies"] = {f"design_{name}": merged(study, DESIGNS[name][1])}
    return config


def run_design(name: str, cores: int) -> float:
    """Write the design's config and run it end to end; returns and records the wall time (s)."""
    folder = RESULTS / "designs"
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / f"{name}.yaml"
    path.write_text(yaml.safe_dump(design_config(name), sort_keys=False))
    start = time.perf_counter()
    subprocess.run([sys.executable, "-m", "snakemake", "--cores", str(cores), "--configfile", str(path)],
                   cwd=ROOT, check=True)
    wall = time.perf_counter() - start
    (folder / f"{name}.wall_s").write_text(f"{wall:.0f}\n")
    return wall


def summarize(name: str, fit: float) -> dict | None:
    """The comparison's numbers for one design that has been run; None if it has not."""
    tables = RESULTS / f"design_{name}" / "tables"
    if not (tables / "kendall.csv").exists():
        return None
    models, _ = split_usable(read_table(tables / "models.csv"))
    table = pd.read_csv(tables / "kendall.csv", index_col="measure")
    images = int(np.load(tables / "test_correct.npz")["correct"].shape[1])
    _, close, pairs = pair_noise(models["test_acc"].to_numpy(float), images, kendall.axis_groups(models, AXES))
    axes = [a for a in AXES if a in table.columns and table[a].notna().any()]

    def widths(columns):
        return np.concatenate([(table[f"{c}_hi"] - table[f"{c}_lo"]).to_numpy(float) for c in columns])

    def excluding_zero(columns):
        lo = np.concatenate([table[f"{c}_lo"].to_numpy(float) for c in columns])
        hi = np.concatenate([table[f"{c}_hi"].to_numpy(float) for c in columns])
        return int(((lo > 0) | (hi < 0)).sum()), int(np.isfinite(lo).sum())

    wall_file = RESULTS / "designs" / f"{name}.wall_s"
    cells_excl, cells = excluding_zero(axes)
    return {
        "design": name,
        "wall_min": float(wall_file.read_text()) / 60 if wall_file.exists() else float("nan"),
        "models": len(models),
        "fit": int((~below_fit(models["train_acc"], fit)).sum()),
        "train_acc": (models["train_acc"].min(), models["train_acc"].max()),
        "test_acc": (models["test_acc"].min(), models["test_acc"].max()),
        "close_pairs": close,
        "pairs": pairs,
        "cell_width": float(np.nanmedian(widths(axes))),
        "total_width": float(np.nanmedian(widths(["total"]))),
        "cells_excluding_zero": (cells_excl, cells),
        "totals": {m: (row["total"], row["total_lo"], row["total_hi"]) for m, row in table.iterrows()},
    }


def percent_range(pair) -> str:
    return f"{100 * pair[0]:.1f}-{100 * pair[1]:.1f}"


def markdown(rows: list[dict], fit: float) -> str:
    lines = [f"| design | what it is | wall (min) | models fitting (train acc >= {fit:g}) | "
             "train acc (%) | test acc (%) | pairs < 2 SE | median width, axis cells | "
             "median width, totals | axis cells excluding 0 |",
             "|---|---|---:|---:|---:|---:|---:|---:|---:|---:|"]
    for r in rows:
        excl, cells = r["cells_excluding_zero"]
        lines.append(f"| {r['design']} | {DESIGNS[r['design']][0]} | {r['wall_min']:.1f} | "
                     f"{r['fit']} of {r['models']} | {percent_range(r['train_acc'])} | "
                     f"{percent_range(r['test_acc'])} | {100 * r['close_pairs']:.0f}% of {r['pairs']} | "
                     f"{r['cell_width']:.2f} | {r['total_width']:.2f} | {excl} of {cells} |")
    measures = list(dict.fromkeys(m for r in rows for m in r["totals"]))
    lines += ["", "Totals [95% interval]:", "",
              "| measure | " + " | ".join(r["design"] for r in rows) + " |",
              "|---|" + "---:|" * len(rows)]
    for m in measures:
        cells = []
        for r in rows:
            value = r["totals"].get(m)
            cells.append("—" if value is None or not np.isfinite(value[0])
                         else f"{value[0]:.2f} [{value[1]:.2f}, {value[2]:.2f}]")
        lines.append(f"| {kendall.MEASURE_LABELS.get(m, m)} | " + " | ".join(cells) + " |")
    return "\n".join(lines)


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--run", action="store_true", help="run the designs before summarizing them")
    parser.add_argument("--designs", nargs="+", choices=list(DESIGNS), default=list(DESIGNS))
    parser.add_argument("--cores", type=int, default=2)
    parser.add_argument("--fit", type=float, default=FIT_ACCURACY, help="training accuracy that counts as fitting")
    args = parser.parse_args(argv)
    if args.run:
        for name in args.designs:
            print(f"design {name}: {run_design(name, args.cores) / 60:.1f} min", flush=True)
    rows = [r for r in (summarize(name, args.fit) for name in args.designs) if r is not None]
    missing = [n for n in args.designs if n not in {r["design"] for r in rows}]
    if missing:
        print(f"not run yet (no results/design_<name>/tables/kendall.csv): {missing}")
    if rows:
        print(markdown(rows, args.fit))


if __name__ == "__main__":
    main()
