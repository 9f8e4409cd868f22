"""Paper vs this run: the paper's Tables 1-3 next to a study's own granulated Kendall table.

The paper (Carbonnelle & De Vleeschouwer, ICLR 2021) reports granulated Kendall
coefficients (Jiang et al. 2020; section 3.2) for three studies: Table 1, ResNets trained
on the 20 CIFAR-100 superclasses (c1-c4 and the four sharpness measures); Table 2,
ResNets on the 100 CIFAR-100 classes; Table 3, VGGs on CIFAR-10 (c3, c4 and sharpness:
c1, c2 need subclasses). Its numbers ship as data in ``resources/paper_tables.csv`` (one
row per cell: table, dataset, arch, labels, models, measure, axis, value), never in code.

A study *matches* a paper table when its dataset, architecture and label level are the
table's (:func:`match_paper_table`); its grid, epochs and widths may be smaller (the notes
say how many models each side has). :func:`paper_vs_run` puts, for each of the paper
table's rows (in its order), the paper's row and this run's row (from ``kendall.csv``,
with its ``<column>_lo``/``_hi`` bootstrap interval when present) under the same columns:
the 8 axes and the total. Both are oriented alike: positive = the measure ranks the models
as their generalization, the sharpness measures counted as complexity measures
(:data:`intraclass.kendall.ORIENTATION_NOTE`).
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

import pandas as pd

from intraclass import kendall
from intraclass.names import AXES, AXIS_LABELS, MEASURE_LABELS, MEASURES
from intraclass.runtime import write_atomic
from intraclass.tables import read_table, write_csv

#: The paper's tables as data (source lines at the top of the file).
PAPER_TABLES = Path(__file__).resolve().parents[3] / "resources" / "paper_tables.csv"
CSV_COLUMNS = ("table", "dataset", "arch", "labels", "models", "measure", "axis", "value")
#: The columns of every table: the paper's 8 axes, then its "total score".
COLUMNS = (*AXES, "total")
PAPER, RUN = "paper", "this run"
#: Section 4.1's k (the paper's text, not its tables): stated in the notes.
PAPER_K = "c1, c3: k=30 neurons; c2, c4: k=5 layers for ResNets, k=1 for VGGs (section 4.1)"


@dataclass(frozen=True)
class PaperTable:
    """One of the paper's tables: what it was computed on, and its values (index: the
    measures in the paper's row order; columns :data:`COLUMNS`)."""

    number: int
    dataset: str
    arch: str
    labels: str
    models: int
    values: pd.DataFrame

    @property
    def title(self) -> str:
        what = "superclasses" if self.labels == "coarse" else "classes"
        return f"Table {self.number} ({self.arch}, {self.dataset} {what}, {self.models} models)"


def read_paper_tables(path: str | os.PathLike = PAPER_TABLES) -> dict[int, PaperTable]:
    """Every table of ``path`` (default :data:`PAPER_TABLES`), by number. Raises ValueError
    naming the file for missing columns, unknown measures or axes, a value outside [-1, 1],
    a cell given twice or a table whose rows disagree on what it was computed on."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"paper tables {path} do not exist")
    frame = pd.read_csv(path, comment="#")
    missing = [c for c in CSV_COLUMNS if c not in frame.columns]
    if missing:
        raise ValueError(f"{path} lacks column(s) {missing} (has {list(frame.columns)})")
    bad = sorted(set(frame["measure"]) - set(MEASURES)) + sorted(set(frame["axis"]) - set(COLUMNS))
    if bad:
        raise ValueError(f"{path}: unknown measure(s)/axis(es) {bad}; known: {list(MEASURES)}, {list(COLUMNS)}")
    if not frame["value"].between(-1, 1).all():
        raise ValueError(f"{path}: Kendall coefficients must lie in [-1, 1]")
    if frame.duplicated(["table", "measure", "axis"]).any():
        raise ValueError(f"{path}: a (table, measure, axis) cell is given twice")
    tables = {}
    for number, rows in frame.groupby("table", sort=True):
        facts = rows[["dataset", "arch", "labels", "models"]].drop_duplicates()
        if len(facts) != 1:
            raise ValueError(f"{path}: table {number} has rows for different studies: {facts.to_dict('records')}")
        order = list(dict.fromkeys(rows["measure"]))
        values = rows.pivot(index="measure", columns="axis", values="value").reindex(index=order, columns=COLUMNS)
        values.index.name = "measure"
        fact = facts.iloc[0]
        tables[int(number)] = PaperTable(int(number), str(fact["dataset"]), str(fact["arch"]),
                                         str(fact["labels"]), int(fact["models"]), values)
    return tables


def match_paper_table(dataset: str, arch: str, labels: str,
                      tables: Mapping[int, PaperTable] | None = None) -> PaperTable | None:
    """The paper table computed on the same dataset, architecture and label level, or None."""
    tables = read_paper_tables() if tables is None else tables
    found = [t for t in tables.values() if (t.dataset, t.arch, t.labels) == (dataset, arch, labels)]
    return found[0] if found else None


def paper_vs_run(paper: PaperTable, run: pd.DataFrame) -> pd.DataFrame:
    """Columns ``measure, source`` (:data:`PAPER` / :data:`RUN`), :data:`COLUMNS`, then
    ``<c>_lo``, ``<c>_hi`` (NaN on the paper's rows, which have no intervals): two rows per
    measure of the paper table, in its order. ``run``: this run's Kendall table (index
    ``measure``, as ``kendall.csv``); a measure or column it lacks is NaN."""
    bounds = [f"{c}{s}" for c in COLUMNS for s in (kendall.LOW, kendall.HIGH)]
    rows = []
    for measure in paper.values.index:
        rows.append({"measure": measure, "source": PAPER, **paper.values.loc[measure].to_dict()})
        ours = run.loc[measure] if measure in run.index else pd.Series(dtype=float)
        rows.append({"measure": measure, "source": RUN,
                     **{c: ours.get(c, float("nan")) for c in (*COLUMNS, *bounds)}})
    return pd.DataFrame(rows, columns=["measure", "source", *COLUMNS, *bounds])


def to_markdown(table: pd.DataFrame, paper: PaperTable, notes: list[str]) -> str:
    """The comparison in the paper's layout, one paragraph per note ('—': no value)."""
    header = [f"Table {paper.number}", "source"] + [AXIS_LABELS[c] for c in COLUMNS]
    lines = ["| " + " | ".join(header) + " |", "|---|---|" + "---:|" * len(COLUMNS)]
    for _, row in table.iterrows():
        label = MEASURE_LABELS.get(row["measure"], row["measure"]) if row["source"] == PAPER else ""
        cells = [label, row["source"]] + [kendall.format_cell(row, c, kendall.MISSING) for c in COLUMNS]
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines) + "\n" + "".join(f"\n{note}\n" for note in notes)


def comparison_notes(paper: PaperTable, study: str, models: int, excluded: int, run: pd.DataFrame,
                     k: Mapping[str, int] | None, c4_active: str, sharpness_note: str | None) -> list[str]:
    """What a reader must know to compare the two rows of each measure."""
    measures = list(paper.values.index)
    intervals = any(f"total{kendall.LOW}" in run.columns and pd.notna(run.at[m, f"total{kendall.LOW}"])
                    for m in measures if m in run.index)
    ours_k = ", ".join(f"{m}: k={v}" for m, v in (k or {}).items() if m in measures)
    notes = [
        f"Paper: {paper.title}, 250 epochs. This run: study {study}, {models} usable models"
        + (f" ({excluded} excluded, see kendall.md)" if excluded else "")
        + "; a smaller grid or fewer epochs make its coefficients noisier and may shift them.",
        kendall.ORIENTATION_NOTE + " The paper's tables follow the same convention.",
        ("[lo, hi] on this run's rows: the bootstrap interval of kendall.csv (test-set noise only); "
         "the paper gives no intervals." if intervals else "No intervals: this run's kendall.csv has none."),
        f"k: the paper {PAPER_K}; this run {ours_k or 'the defaults'}.",
        f"c4 threshold: this run {c4_active} (config measures.c4_active); the paper defines a fixed "
        "75th percentile, its code lowered it in layers under 40 neurons (narrow).",
    ]
    if sharpness_note and any(m not in ("c1", "c2", "c3", "c4") for m in measures):
        notes.append(f"This run: {sharpness_note} The paper's searches targeted a training accuracy of 0.9.")
    missing = [MEASURE_LABELS.get(m, m) for m in measures if m not in run.index]
    if missing:
        notes.append(f"Not computed in this run: {', '.join(missing)} (—).")
    return notes


def write_paper_vs_run(kendall_csv: str | os.PathLike, models_csv: str | os.PathLike,
                       out: Mapping[str, str | os.PathLike], *, study: str, dataset: str, arch: str,
                       labels: str, k: Mapping[str, int] | None = None, c4_active: str = "fixed",
                       sharpness_note: str | None = None,
                       tables_path: str | os.PathLike = PAPER_TABLES) -> pd.DataFrame:
    """The ``paper_vs_run`` rule: ``out`` maps ``csv`` and ``md`` to paths. Raises ValueError
    when no paper table matches the study (the rule runs only for studies that match)."""
    from intraclass.evaluation.notes import split_usable

    paper = match_paper_table(dataset, arch, labels, read_paper_tables(tables_path))
    if paper is None:
        raise ValueError(f"study {study} ({dataset}, {arch}, {labels} labels) matches none of the "
                         f"paper's tables in {tables_path}")
    run = read_table(kendall_csv)
    if "measure" not in run.columns:
        raise ValueError(f"{kendall_csv} has no 'measure' column (columns {list(run.columns)})")
    run = run.set_index("measure")
    usable, excluded = split_usable(read_table(models_csv))
    table = paper_vs_run(paper, run)
    notes = comparison_notes(paper, study, len(usable), len(excluded), run, k, c4_active, sharpness_note)
    write_csv(table, out["csv"], float_format="%.6g")
    text = to_markdown(table, paper, notes)
    write_atomic(out["md"], lambda p: Path(p).write_text(text))
    return table
