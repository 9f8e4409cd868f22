"""What every evaluation table says under it, and which models it uses.

- Usable models: a ``status`` column of ``models.csv`` other than ``"ok"`` excludes the
  model from every table and figure; the note lists it with its ``reason``. No column =
  every model is usable.
- Noise floor: the test set of ``n`` images measures an accuracy ``a`` with standard error
  ``SE = sqrt(a (1 - a) / n)``. The note gives ``n``, the median SE over the models and
  the share of within-group model pairs (the pairs the Kendall coefficient compares)
  whose accuracy difference is below ``2 SE``, with ``SE`` of a pair the root mean square
  of its two models' SE (differences that small are not resolved by the test set).
- Sharpness target: when the table has a sharpness measure, the sentence of
  :func:`intraclass.sharpness_settings.target_description` (absolute target, the authors' 0.9, or
  each model's own training accuracy minus a deviation), given by the caller.
- Searches that ended on a bound: ``<measure>_at_bound`` (bool) per sharpness measure;
  counted per measure over the usable models with a value ("1/α': 25 of 28 at the search
  bound").
- Training fit: the paper's models fit their training set (~100% training accuracy) and
  differ in how they generalize; the note counts the usable models whose ``train_acc``
  reaches :data:`FIT_ACCURACY` and names the others with their training accuracy (a
  study where many do not fit ranks underfitting as much as generalization).
- Devices: when the ``device`` column holds more than one value, the note says so
  (float32 results of different devices can differ in their last digits).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence

import numpy as np
import pandas as pd

from intraclass.evaluation.bootstrap import standard_error
from intraclass.names import AT_BOUND_SUFFIX, MEASURE_LABELS, SHARPNESS

# Training accuracy from which a model counts as fitting its training set (the paper's
# regime: ~100%, appendix A.3 trains to a loss of 1e-4); 99% tolerates the last few
# mislabelled-looking images of a scaled-down run.
FIT_ACCURACY = 0.99


def split_usable(models: pd.DataFrame) -> tuple[pd.DataFrame, pd.DataFrame]:
    """(usable models with a fresh 0..n-1 index, excluded models) by the ``status`` column."""
    if "status" not in models.columns:
        return models.reset_index(drop=True), models.iloc[:0]
    ok = models["status"].fillna("ok").astype(str).str.strip().eq("ok")
    return models[ok].reset_index(drop=True), models[~ok]


def at_bound(models: pd.DataFrame, measure: str) -> np.ndarray:
    """(models,) bool: the measure's search ended on a bound (False without the column;
    a column read back from CSV may hold the text True/False)."""
    column = f"{measure}{AT_BOUND_SUFFIX}"
    if column not in models.columns:
        return np.zeros(len(models), bool)
    values = models[column]
    if values.dtype != bool:
        values = values.astype(str).str.strip().str.lower().isin({"true", "1", "yes"})
    return values.to_numpy(bool)


def below_fit(train_acc, threshold: float = FIT_ACCURACY) -> np.ndarray:
    """(models,) bool: training accuracy below ``threshold``; an unknown (NaN) accuracy
    counts as below (not known to fit). The one rule of the fit note and of
    ``analysis.min_train_acc``."""
    return ~(np.asarray(train_acc, dtype=float) >= threshold)


def split_fitting(models: pd.DataFrame, excluded: pd.DataFrame,
                  min_train_acc: float | None) -> tuple[pd.DataFrame, pd.DataFrame]:
    """``analysis.min_train_acc``: (usable models whose ``train_acc`` reaches ``min_train_acc``,
    with a fresh index; ``excluded`` plus the others, each with its reason). None: unchanged.
    Ranking only models that fit is the paper's regime; the notes list the rest."""
    if min_train_acc is None:
        return models, excluded
    if "train_acc" not in models.columns:
        raise ValueError("analysis.min_train_acc needs the models' train_acc column")
    train = models["train_acc"].to_numpy(float)
    below = below_fit(train, min_train_acc)
    dropped = models.loc[below, ["model"]].assign(
        reason=[f"training accuracy {_percent(a, str)} below analysis.min_train_acc {min_train_acc:g}"
                for a in train[below]])
    return models.loc[~below].reset_index(drop=True), pd.concat([excluded, dropped], ignore_index=True)


def bound_counts(models: pd.DataFrame, measures: Sequence[str]) -> dict[str, tuple[int, int]]:
    """measure -> (models at the search bound, models with a value), for the measures that
    have an ``_at_bound`` column and at least one flagged model."""
    out = {}
    for measure in measures:
        if f"{measure}{AT_BOUND_SUFFIX}" not in models.columns or measure not in models.columns:
            continue
        has_value = models[measure].notna().to_numpy()
        flagged = int((at_bound(models, measure) & has_value).sum())
        if flagged:
            out[measure] = (flagged, int(has_value.sum()))
    return out


def pair_noise(accuracy: np.ndarray, images: int,
               groups: Mapping[str, Sequence[np.ndarray]]) -> tuple[float, float, int]:
    """(median SE, share of within-group pairs closer than 2 SE, number of such pairs).

    accuracy: (models,) test accuracy in [0, 1]; groups: :func:`intraclass.kendall.axis_groups`.
    """
    se = standard_error(accuracy, images)
    close, total = 0, 0
    for members in groups.values():
        for idx in members:
            i, j = np.triu_indices(len(idx), k=1)
            a, b = idx[i], idx[j]
            pair_se = np.sqrt((se[a] ** 2 + se[b] ** 2) / 2.0)
            keep = ~np.isnan(accuracy[a]) & ~np.isnan(accuracy[b])
            close += int((np.abs(accuracy[a] - accuracy[b]) < 2.0 * pair_se)[keep].sum())
            total += int(keep.sum())
    median = float(np.nanmedian(se)) if np.isfinite(se).any() else float("nan")
    return median, (close / total if total else float("nan")), total


def table_notes(models: pd.DataFrame, excluded: pd.DataFrame, measures: Sequence[str],
                groups: Mapping[str, Sequence[np.ndarray]], images: int | None,
                label: Callable[[str], str] = lambda m: MEASURE_LABELS.get(m, m),
                escape: Callable[[str], str] = str, sharpness_target: str | None = None) -> list[str]:
    """The noise floor, sharpness target, bound, device and exclusion sentences (in this
    order; empty ones left out). ``label`` names a measure (Markdown or LaTeX), ``escape``
    makes free text (ids, reasons, device names) safe for the format; ``sharpness_target``:
    the study's target sentence, shown when ``measures`` has a sharpness measure."""
    notes = [noise_note(models, groups, images, escape)]
    fit = fit_note(models, escape)
    if fit:
        notes.append(fit)
    if sharpness_target and any(m in SHARPNESS for m in measures):
        notes.append(escape(sharpness_target))
    bounds = bound_counts(models, measures)
    if bounds:
        notes.append("Search bound: " + "; ".join(f"{label(m)}: {k} of {n} at the search bound"
                                                 for m, (k, n) in bounds.items()) + ".")
    if "device" in models.columns and models["device"].nunique(dropna=True) > 1:
        counts = models["device"].value_counts(dropna=True).sort_index()
        notes.append("Mixed devices (" + ", ".join(f"{escape(str(d))}: {n}" for d, n in counts.items())
                     + "): float32 results of different devices can differ in their last digits.")
    if len(excluded):
        reasons = excluded["reason"] if "reason" in excluded.columns else pd.Series("", index=excluded.index)
        items = [f"{escape(str(m))} ({escape(str(r)) if pd.notna(r) and str(r) else 'no reason given'})"
                 for m, r in zip(excluded["model"], reasons)]
        notes.append(f"Excluded ({len(items)}, status not ok): " + ", ".join(items) + ".")
    return notes


def fit_note(models: pd.DataFrame, escape: Callable[[str], str] = str) -> str | None:
    """How many models reach :data:`FIT_ACCURACY` training accuracy, naming the others
    (lowest first); None without a ``train_acc`` column."""
    if "train_acc" not in models.columns or models.empty:
        return None
    train = models["train_acc"].to_numpy(float)
    below = np.flatnonzero(below_fit(train))
    head = (f"Training fit: {len(models) - len(below)} of {len(models)} models reach "
            f"{100 * FIT_ACCURACY:g}{escape('%')} training accuracy")
    if not len(below):
        return head + "."
    below = below[np.argsort(train[below], kind="stable")]
    names = ", ".join(f"{escape(str(models['model'].iloc[i]))} ({_percent(train[i], escape)})" for i in below)
    return f"{head}; not: {names}."


def _percent(value: float, escape: Callable[[str], str]) -> str:
    return "no value" if not np.isfinite(value) else f"{100 * value:.1f}{escape('%')}"


def noise_note(models: pd.DataFrame, groups: Mapping[str, Sequence[np.ndarray]], images: int | None,
               escape: Callable[[str], str] = str) -> str:
    if not images:
        return "Noise floor: test-set size unknown (no per-image correctness), not estimated."
    median, share, pairs = pair_noise(models["test_acc"].to_numpy(float), images, groups)
    if not pairs:
        return (f"Noise floor: {images} test images; median SE of a test accuracy "
                f"{100 * median:.2f} points; no within-group model pairs.")
    return (f"Noise floor: {images} test images; median SE of a test accuracy {100 * median:.2f} "
            f"points; {100 * share:.0f}{escape('%')} of the {pairs} within-group model pairs differ by less "
            "than 2 SE.")
