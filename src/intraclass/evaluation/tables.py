"""The ``kendall`` stage: the oriented Kendall table with bootstrap intervals, the k curves of
Figure 4 and the CMI table, each with its notes.

Outputs (every file written to a temporary path and renamed):

- ``kendall.csv``: index ``measure``; one column per axis and ``total`` (point values,
  oriented: :data:`intraclass.kendall.ORIENTATION_NOTE`), then ``<col>_lo`` and
  ``<col>_hi`` for each of them (the bootstrap interval; NaN when the bootstrap is off or
  the per-image correctness is missing). ``kendall.md`` / ``kendall.tex`` show
  ``0.73 [0.61, 0.82]`` and the notes.
- ``kendall_k.csv``: ``measure, k, <axes>, total`` and the same ``_lo``/``_hi`` columns.
- ``cmi.csv``: index ``measure``; ``K`` (the score), ``S_min`` (the conditioning set that
  attains it, axes joined by ``+``, ``∅`` for none), ``none`` (jiang only: CMI without
  conditioning) and one column per axis (the smallest CMI over the sets containing that
  axis). Point values only: the CMI is not bootstrapped. ``cmi.md`` / ``cmi.tex`` with notes.

Models whose ``status`` is not ``ok`` are left out of all of them and listed in the notes.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Mapping, Sequence
from pathlib import Path

import numpy as np
import pandas as pd

from intraclass import kendall
from intraclass.evaluation import bootstrap, cmi, notes
from intraclass.names import AXES, MEASURE_LATEX
from intraclass.runtime import write_atomic
from intraclass.tables import read_table, write_csv

log = logging.getLogger(__name__)


def read_correct(path: str | os.PathLike, model_ids: Sequence[str]) -> np.ndarray:
    """(models, test images) bool from ``test_correct.npz`` (arrays ``models``, ``correct``),
    rows reordered to ``model_ids``; an error names the file and any model it lacks."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"per-image correctness file {path} does not exist")
    with np.load(path, allow_pickle=False) as data:
        missing = [k for k in ("models", "correct") if k not in data.files]
        if missing:
            raise ValueError(f"{path} lacks array(s) {missing} (has {data.files})")
        ids, correct = [str(m) for m in data["models"]], data["correct"]
    if correct.ndim != 2 or correct.shape[0] != len(ids):
        raise ValueError(f"{path}: 'correct' has shape {correct.shape}, expected ({len(ids)}, test images)")
    row = {m: i for i, m in enumerate(ids)}
    absent = [m for m in model_ids if m not in row]
    if absent:
        raise ValueError(f"{path} has no correctness for model(s) {absent[:5]}" + (" ..." if len(absent) > 5 else ""))
    return correct[[row[m] for m in model_ids]].astype(bool)


def check_accuracy(models: pd.DataFrame, correct: np.ndarray) -> None:
    """Warn when the correctness matrix and models.csv disagree on a test accuracy by more
    than half an image (they come from the same float32 evaluation)."""
    difference = np.abs(correct.mean(axis=1) - models["test_acc"].to_numpy(float))
    bad = np.flatnonzero(difference > 0.5 / correct.shape[1])
    if len(bad):
        log.warning("test accuracy of %d model(s) differs from their per-image correctness "
                    "(first: %s, by %.4f); intervals use the per-image correctness",
                    len(bad), models["model"].iloc[bad[0]], difference[bad[0]])


def with_intervals(table: pd.DataFrame, low: np.ndarray | None, high: np.ndarray | None,
                   columns: Sequence[str]) -> pd.DataFrame:
    """``table`` plus ``<c>_lo``/``<c>_hi`` for each of ``columns``; low/high: (columns,
    rows) or None (all NaN)."""
    table = table.copy()
    for a, column in enumerate(columns):
        table[f"{column}{kendall.LOW}"] = np.nan if low is None else low[a]
        table[f"{column}{kendall.HIGH}"] = np.nan if high is None else high[a]
    return table


def kendall_tables(models: pd.DataFrame, tidy: pd.DataFrame, correct: np.ndarray | None,
                   settings: bootstrap.BootstrapSettings, generalization: str = "test_acc",
                   axes: Sequence[str] = AXES) -> tuple[pd.DataFrame, pd.DataFrame]:
    """The oriented Kendall table and k curves of the usable ``models``, with intervals.

    The table's measures and every k of the sweeps are bootstrapped together (one draw
    per resample for all of them)."""
    table = kendall.kendall_table(models, generalization, axes)
    curve = kendall.kendall_k_curve(models, tidy, generalization, axes)
    columns = [*axes, "total"]
    if correct is None or settings.resamples == 0 or (table.empty and curve.empty):
        return with_intervals(table, None, None, columns), with_intervals(curve, None, None, columns)
    sweeps = kendall.k_sweep_columns(models, tidy)
    values = np.hstack([kendall.oriented(models, list(table.index)),
                        *[v * kendall.direction(m) for m, _, v in sweeps]])
    train = models["train_acc"].to_numpy(float) if "train_acc" in models.columns else None
    reps = bootstrap.replicates(values, kendall.axis_groups(models, axes), correct, settings,
                                generalization, train)
    low, high = bootstrap.percentile_interval(reps, settings.level)  # (axes + 1, columns)
    rows = len(table)
    return (with_intervals(table, low[:, :rows], high[:, :rows], columns),
            with_intervals(curve, low[:, rows:], high[:, rows:], columns))


def interval_note(settings: bootstrap.BootstrapSettings, images: int | None, escape=str) -> str:
    if not images or settings.resamples == 0:
        why = "disabled (analysis.bootstrap.resamples: 0)" if images else "no per-image correctness"
        return f"No intervals: bootstrap {why}."
    return (f"[lo, hi]: {100 * settings.level:g}{escape('%')} percentile interval of a paired bootstrap "
            f"over the {images} test images ({settings.resamples} resamples, seed {settings.seed}); "
            "it does not cover seed-to-seed variance of training, the choice of the grid or noise "
            "in the measures.")


def cmi_note(variant: str, generalization: str) -> str:
    if variant == "pgdl":
        return ("Conditional mutual information, PGDL scoring variant (x100): minimum over pairs of "
                "hyperparameters, every slice weighted equally, against the generalization gap. "
                "Point values, no intervals; CMI ignores the sign of the relation.")
    target = "test accuracy" if generalization == "test_acc" else "minus the generalization gap"
    return (f"Conditional mutual information K (Jiang et al., 2020) against {target}: minimum over "
            "conditioning sets of at most 2 hyperparameters (S_min), normalized by H(V_g | S); "
            "'none' = no conditioning; an axis column = the minimum over the sets containing it. "
            "Point values, no intervals; CMI ignores the sign of the relation.")


def write_evaluation(
    models_csv: str | os.PathLike,
    measures_csv: str | os.PathLike,
    correct_npz: str | os.PathLike | None,
    out: Mapping[str, str | os.PathLike],
    axes: Sequence[str] | Mapping[str, str] | None = None,
    generalization: str = "test_acc",
    k: Mapping[str, int] | None = None,
    bootstrap_settings: Mapping | None = None,
    cmi_variant: str = "jiang",
    sharpness: Mapping | None = None,
    min_train_acc: float | None = None,
) -> tuple[pd.DataFrame, pd.DataFrame]:
    """The ``kendall`` stage. ``out`` maps ``csv, md, tex, k_curve, cmi_csv, cmi_md, cmi_tex``
    to paths. ``axes``: the paper's axis names (default: all eight) or a zoo's
    ``{label: column}`` (:func:`intraclass.kendall.axis_columns`). Returns the Kendall and
    CMI tables. ``sharpness``: the study's sharpness settings that decide the searches'
    target (None: no sharpness), stated in the notes
    (:func:`intraclass.sharpness_settings.target_description`). ``min_train_acc``
    (``analysis.min_train_acc``): rank only the models that reach this training accuracy,
    listing the others as excluded (:func:`intraclass.evaluation.notes.split_fitting`)."""
    axes = dict(axes) if isinstance(axes, Mapping) else (tuple(axes) if axes else AXES)
    settings = bootstrap.BootstrapSettings.from_config(bootstrap_settings)
    if cmi_variant not in cmi.VARIANTS:
        raise ValueError(f"analysis.cmi.variant must be one of {list(cmi.VARIANTS)}, not {cmi_variant!r}")
    models, excluded = notes.split_fitting(*notes.split_usable(read_table(models_csv)), min_train_acc)
    tidy = read_table(measures_csv)
    correct = read_correct(correct_npz, models["model"].tolist()) if correct_npz else None
    if correct is not None:
        check_accuracy(models, correct)
    images = None if correct is None else correct.shape[1]
    table, curve = kendall_tables(models, tidy, correct, settings, generalization, axes)
    measures = list(table.index)
    cmi_frame = cmi.cmi_table(models, measures, kendall.oriented(models, measures),
                              kendall.generalization_values(models, generalization), axes, cmi_variant)
    groups = kendall.axis_groups(models, axes)

    def all_notes(first: str, fmt: str, with_intervals: bool) -> list[str]:
        escape = kendall.latex_escape if fmt == "tex" else str
        label = (lambda m: MEASURE_LATEX.get(m, m)) if fmt == "tex" else (lambda m: kendall.MEASURE_LABELS.get(m, m))
        head = [escape(first), escape(kendall.ORIENTATION_NOTE)]
        if with_intervals:
            head.append(interval_note(settings, images, escape))
        return head + notes.table_notes(models, excluded, measures, groups, images, label, escape, target)

    target = None
    if sharpness is not None:  # {}: sharpness with the default target
        from intraclass.sharpness_settings import target_description

        target = target_description(sharpness)

    k_text = kendall.k_note({m: v for m, v in (k or {}).items() if m in measures}, generalization)
    write_csv(table, out["csv"], index=True, float_format="%.6g")
    write_text(out["md"], kendall.to_markdown(table, all_notes(k_text, "md", True)))
    write_text(out["tex"], kendall.to_latex(table, all_notes(k_text, "tex", True)))
    write_csv(curve, out["k_curve"], float_format="%.6g")
    c_text = cmi_note(cmi_variant, generalization)
    write_csv(cmi_frame, out["cmi_csv"], index=True, float_format="%.6g")
    write_text(out["cmi_md"], kendall.to_markdown(cmi_frame, all_notes(c_text, "md", False), CMI_HEADERS))
    write_text(out["cmi_tex"], kendall.to_latex(cmi_frame, all_notes(c_text, "tex", False), CMI_HEADERS))
    return table, cmi_frame


CMI_HEADERS = {"K": "K", "S_min": "S_min", "none": "no conditioning"}


def write_text(path: str | os.PathLike, text: str) -> None:
    write_atomic(path, lambda p: Path(p).write_text(text))
