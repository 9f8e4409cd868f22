"""Granulated Kendall rank correlation of Jiang et al. (2020), as used in the paper (Sec. 3.2).

Definitions (docs/criteria.md; Jiang et al. 2020):

- Kendall's tau of a measure ``mu`` against generalization ``g`` over a set of models is
  the mean, over ordered pairs ``i != j``, of ``sign(mu_i - mu_j) * sign(g_i - g_j)`` with
  ``sign(0) = 0``. This is tau-a: ties count as 0 in the numerator but stay in the
  denominator ``n (n - 1)``, so with ties it is smaller in magnitude than scipy's tau-b;
  without ties both are equal.
- Granulated: for hyperparameter axis ``a``, the models are grouped by equal values of
  every *other* hyperparameter (the seed included: models differing only in seed are not
  a variation of ``a``). ``psi_a`` is the mean tau over the groups with 2 or more models;
  an axis without any such group is missing (NaN). The total score is the mean of
  ``psi_a`` over the axes that are not missing.
- Axes: a grid study's axes are the paper's eight (:data:`AXES`, mapped to the
  ``models.csv`` columns by :data:`AXIS_COLUMNS`). A zoo study's axes (docs/zoo.md) are
  columns of its table, given as a mapping ``{label: column}`` (each column its own label,
  :func:`axis_columns`); "every other hyperparameter" is then the zoo's other axes and
  ``seed`` when present.
- Generalization is test accuracy (the paper's models reach ~100 % training accuracy);
  ``gap`` uses ``-(train_acc - test_acc)`` so that higher is better in both cases.

Orientation (paper Tables 1-3): every measure is ranked as ``direction * value`` with
``direction`` from :data:`intraclass.names.DIRECTION` (+1 for the intraclass measures,
higher = better generalization; -1 for the sharpness measures 1/sigma', 1/sigma'',
1/alpha', 1/alpha'', complexity measures in Jiang et al. whose higher values go with a
larger generalization gap). A positive coefficient therefore always means "ranks the
models the way their generalization goes"; the stored values are not changed.

A model whose measure (or generalization) is NaN -- a sharpness value that failed, a k
beyond the model's number of neurons in a k sweep -- is left out of its group, as if it
had not been trained; the group is skipped if fewer than 2 models remain.

All tau computations go through :func:`tau_a_columns`, vectorized over many measure
columns at once (the k sweeps of Fig. 4 rank thousands of k values); :func:`tau_a_reference`
is the plain double loop it is tested against.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Mapping, Sequence

import numpy as np
import pandas as pd

log = logging.getLogger(__name__)

from intraclass.measures import registry  # noqa: E402 - read when used (plug-ins)
from intraclass.names import (  # noqa: E402 - re-exported: the Kendall tables' vocabulary
    AXES,
    AXIS_COLUMNS,
    AXIS_LABELS,
    EXTRA_KEYS,
    FAMILY,
    INTRACLASS,  # noqa: F401 - re-exported (tests, figures)
    MEASURE_LABELS,
    MEASURE_LATEX,
    MEASURES,  # noqa: F401 - re-exported (figures)
    SHARPNESS,  # noqa: F401 - re-exported (tests, figures)
)

MISSING = "—"
#: The convention every table and figure states in its note.
ORIENTATION_NOTE = ("Positive = ranks models as their generalization; sharpness measures enter "
                    "negated, as complexity measures (higher = worse generalization); stored values "
                    "are unchanged.")
#: Suffixes of the interval columns (``total_lo``, ``total_hi``, ...).
LOW, HIGH = "_lo", "_hi"


def direction(measure: str) -> int:
    """+1 when a higher value of ``measure`` should go with better generalization, -1 when
    with worse (its registry declaration, read now so that a plug-in registered after this
    module was imported counts too); a measure not registered counts as +1."""
    try:
        return int(registry.get(measure).direction)
    except KeyError:
        return 1


def oriented(models: pd.DataFrame, measures: Sequence[str]) -> np.ndarray:
    """(models, measures) float: each measure column times its :func:`direction`."""
    signs = np.array([direction(m) for m in measures], dtype=float)
    return models[list(measures)].to_numpy(float) * signs


# --------------------------------------------------------------------------- tau-a


def tau_a_reference(measure: Sequence[float], generalization: Sequence[float]) -> float:
    """Kendall tau-a by the definition: a plain loop over ordered pairs ``i != j``.

    The reference that :func:`tau_a_columns` is tested against. NaN if fewer than 2 models.
    """
    mu = [float(v) for v in measure]
    g = [float(v) for v in generalization]
    if len(mu) != len(g):
        raise ValueError(f"measure has {len(mu)} values but generalization has {len(g)}")
    n = len(mu)
    if n < 2:
        return math.nan
    total = 0.0
    for i in range(n):
        for j in range(n):
            if i != j:
                total += np.sign(mu[i] - mu[j]) * np.sign(g[i] - g[j])
    return total / (n * (n - 1))


def tau_a_columns(values: np.ndarray, generalization: np.ndarray) -> np.ndarray:
    """Kendall tau-a of each column of ``values`` against ``generalization``.

    values: (models, columns) float; generalization: (models,) float. A NaN entry drops
    that model from that column only (and a NaN generalization from every column).
    Returns (columns,) float: NaN where a column has fewer than 2 models left.
    Each unordered pair is counted once; the ordered-pair mean is the same number because
    the product of signs is symmetric in (i, j).
    """
    values = np.asarray(values, dtype=float)
    g = np.asarray(generalization, dtype=float)
    if values.ndim == 1:
        values = values[:, None]
    if values.shape[0] != g.shape[0]:
        raise ValueError(f"{values.shape[0]} models in values but {g.shape[0]} generalization values")
    n = g.shape[0]
    out = np.full(values.shape[1], np.nan)
    if n < 2:
        return out
    i, j = np.triu_indices(n, k=1)  # (pairs,)
    g_sign = np.sign(g[i] - g[j])  # (pairs,) NaN where either g is NaN
    mu_sign = np.sign(values[i] - values[j])  # (pairs, columns)
    prod = mu_sign * g_sign[:, None]
    valid = ~np.isnan(prod)
    pairs = valid.sum(axis=0)  # unordered pairs of models both present, per column
    sums = np.where(valid, prod, 0.0).sum(axis=0)
    # with m models present in a column, pairs = m (m - 1) / 2 >= 1 iff m >= 2
    np.divide(sums, pairs, out=out, where=pairs > 0)
    return out


# --------------------------------------------------------------------- granulated


def axis_columns(axes: Sequence[str] | Mapping[str, str]) -> dict[str, str]:
    """``{axis label: models.csv column}``: names of the paper's axes map through
    :data:`AXIS_COLUMNS`; a mapping (a zoo's axes, module doc) is taken as given."""
    if isinstance(axes, Mapping):
        return {str(a): str(c) for a, c in axes.items()}
    _check_axes(axes)
    return {a: AXIS_COLUMNS[a] for a in axes}


def group_keys(hparams: pd.DataFrame, axes: Sequence[str] | Mapping[str, str]) -> list[str]:
    """The columns whose equality defines "equal on every other axis": the paper's eight
    and ``seed`` for the paper's axes (also when only some are reported); a zoo's axis
    columns and ``seed`` for a mapping. Only columns present in ``hparams``."""
    names = axis_columns(axes).values() if isinstance(axes, Mapping) else AXIS_COLUMNS.values()
    return [c for c in dict.fromkeys((*names, *EXTRA_KEYS)) if c in hparams.columns]


def axis_groups(hparams: pd.DataFrame,
                axes: Sequence[str] | Mapping[str, str] = AXES) -> dict[str, list[np.ndarray]]:
    """For each axis, the row positions of the groups of models equal on every other axis.

    hparams: one row per model with the axis columns (:func:`axis_columns`; and ``seed``
    when present). "Every other axis" means every hyperparameter of :func:`group_keys`,
    also when only some ``axes`` are asked for: models differing in an axis that is not
    reported are never grouped. Only groups of 2 or more models are returned; an axis with
    none maps to [].
    """
    mapping = axis_columns(axes)
    columns = list(mapping.values())
    missing = [c for c in columns if c not in hparams.columns]
    if missing:
        raise KeyError(f"models table lacks hyperparameter column(s) {missing} "
                       f"(needed for the Kendall axes {list(mapping)})")
    keys = group_keys(hparams, axes)
    frame = hparams[keys].reset_index(drop=True)
    groups: dict[str, list[np.ndarray]] = {}
    for axis, column in mapping.items():
        others = [c for c in keys if c != column]
        if others:
            grouped = frame.groupby(others, dropna=False, sort=True).indices
            members = [np.asarray(idx) for idx in grouped.values()]
        else:  # a single axis: all models form one group
            members = [np.arange(len(frame))]
        groups[axis] = [idx for idx in members if len(idx) >= 2]
    return groups


def granulated_kendall_columns(
    values: np.ndarray,
    generalization: np.ndarray,
    groups: Mapping[str, list[np.ndarray]],
) -> pd.DataFrame:
    """Granulated Kendall of each column of ``values`` (models x columns).

    Returns a frame indexed by column position with one column per axis (psi_a) and
    ``total`` (mean of the non-missing psi_a). Groups where a column has fewer than 2
    models with values are skipped for that column.
    """
    values = np.asarray(values, dtype=float)
    if values.ndim == 1:
        values = values[:, None]
    g = np.asarray(generalization, dtype=float)
    result = {}
    for axis, members in groups.items():
        taus = [tau_a_columns(values[idx], g[idx]) for idx in members]
        if taus:
            stacked = np.vstack(taus)  # (groups, columns)
            present = ~np.isnan(stacked)
            count = present.sum(axis=0)
            psi = np.full(values.shape[1], np.nan)
            np.divide(np.where(present, stacked, 0.0).sum(axis=0), count, out=psi, where=count > 0)
        else:
            psi = np.full(values.shape[1], np.nan)
        result[axis] = psi
    table = pd.DataFrame(result)
    psi_values = table.to_numpy()
    present = ~np.isnan(psi_values)
    count = present.sum(axis=1)
    total = np.full(len(table), np.nan)
    np.divide(np.where(present, psi_values, 0.0).sum(axis=1), count, out=total, where=count > 0)
    table["total"] = total
    return table


def granulated_kendall(
    models: pd.DataFrame,
    measure: str,
    generalization: str = "test_acc",
    axes: Sequence[str] = AXES,
) -> pd.Series:
    """psi for each axis and the total score of one measure column of ``models``,
    oriented by :func:`direction` (a column that is no known measure counts as +1)."""
    g = generalization_values(models, generalization)
    groups = axis_groups(models, axes)
    table = granulated_kendall_columns(oriented(models, [measure]), g, groups)
    row = table.iloc[0]
    row.name = measure
    return row


def generalization_values(models: pd.DataFrame, generalization: str = "test_acc") -> np.ndarray:
    """The generalization score per model, higher = better: test accuracy or minus the gap."""
    if generalization == "test_acc":
        return models["test_acc"].to_numpy(float)
    if generalization == "gap":
        return -(models["train_acc"].to_numpy(float) - models["test_acc"].to_numpy(float))
    raise ValueError(f"generalization must be 'test_acc' or 'gap', not {generalization!r}")


# ------------------------------------------------------------------------- tables


def measure_columns(models: pd.DataFrame) -> list[str]:
    """Measure columns present in ``models`` with at least one value, in the paper's order."""
    # the registry is read now: plug-ins registered after this module was imported count
    return [m for m in registry.names() if m in models.columns and models[m].notna().any()]


def kendall_table(
    models: pd.DataFrame,
    generalization: str = "test_acc",
    axes: Sequence[str] = AXES,
) -> pd.DataFrame:
    """Tables 1-3: granulated Kendall of every oriented measure (rows) per axis and total
    (columns); see :data:`ORIENTATION_NOTE`."""
    measures = measure_columns(models)
    g = generalization_values(models, generalization)
    groups = axis_groups(models, axes)
    for axis, members in groups.items():
        if not members:
            log.warning("axis %s has no group of 2+ models equal on the other axes: "
                        "reported as missing", axis)
    table = granulated_kendall_columns(oriented(models, measures), g, groups)
    table.index = pd.Index(measures, name="measure")
    return table


def kendall_k_curve(
    models: pd.DataFrame,
    measures: pd.DataFrame,
    generalization: str = "test_acc",
    axes: Sequence[str] = AXES,
) -> pd.DataFrame:
    """Granulated Kendall of c1 and c3 (oriented, :func:`direction`) as a function of k (Fig. 4).

    measures: the tidy rows with a ``model`` column (``measures.csv.gz``); the rows used
    are ``scope == k_sweep`` at the final checkpoint. A model without a value at some k
    (fewer neurons than k) is left out of the groups at that k. Returns long format:
    ``measure, k, <axes>, total``; empty (with those columns) when there is no sweep.
    """
    axis_columns(axes)  # names an unknown axis
    columns = ["measure", "k", *axes, "total"]
    g = generalization_values(models, generalization)
    groups = axis_groups(models, axes)
    parts = []
    for measure, ks, values in k_sweep_columns(models, measures):
        table = granulated_kendall_columns(values * direction(measure), g, groups)
        table.insert(0, "k", ks)
        table.insert(0, "measure", measure)
        parts.append(table)
    if not parts:
        return pd.DataFrame(columns=columns)
    return pd.concat(parts, ignore_index=True)[columns]


def k_sweep_columns(models: pd.DataFrame, measures: pd.DataFrame) -> list[tuple[str, np.ndarray, np.ndarray]]:
    """The k sweeps (c1, c3 and any measure declared with a k curve) as (measure, ks (k,)
    int, values (models, k) float) with the models in the order of ``models`` and NaN where
    a model has no value at a k. Values are as stored (not oriented)."""
    sweep = measures[(measures["scope"] == "k_sweep") & (measures["checkpoint"] == "final")]
    out = []
    for measure in (m.name for m in registry.measures() if m.sweep):  # the k-curve measures
        rows = sweep[sweep["measure"] == measure]
        if rows.empty:
            continue
        duplicated = rows.duplicated(["model", "k"])
        if duplicated.any():
            first = rows[duplicated].iloc[0]
            raise ValueError(f"k sweep of {measure} has several values for model "
                             f"{first['model']!r} at k={first['k']}")
        wide = rows.pivot(index="model", columns="k", values="value").reindex(models["model"])
        out.append((measure, wide.columns.to_numpy().astype(int), wide.to_numpy(float)))
    return out


def display_columns(table: pd.DataFrame) -> list[str]:
    """The columns a table shows: every column except the interval bounds ``<c>_lo/_hi``."""
    bounds = {f"{c}{LOW}" for c in table.columns} | {f"{c}{HIGH}" for c in table.columns}
    return [c for c in table.columns if c not in bounds]


def _number(value, missing: str) -> str:
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return missing
    if isinstance(value, str):
        return value
    return f"{value:.2f}"


def format_cell(row: pd.Series, column: str, missing: str) -> str:
    """``0.73`` or, when the row has ``<column>_lo`` and ``<column>_hi``, ``0.73 [0.61, 0.82]``."""
    text = _number(row[column], missing)
    low, high = row.get(f"{column}{LOW}"), row.get(f"{column}{HIGH}")
    if text == missing or low is None or high is None or pd.isna(low) or pd.isna(high):
        return text
    return f"{text} [{low:.2f}, {high:.2f}]"


def as_notes(note: str | Sequence[str] | None) -> list[str]:
    if not note:
        return []
    return [note] if isinstance(note, str) else [n for n in note if n]


def to_markdown(table: pd.DataFrame, note: str | Sequence[str] | None = None,
                headers: Mapping[str, str] | None = None) -> str:
    """The table in the paper's layout as GitHub Markdown (missing values as '—'), one
    paragraph per note. Interval columns (``<c>_lo``, ``<c>_hi``) go into their cell."""
    columns = display_columns(table)
    headers = {**AXIS_LABELS, **(headers or {})}
    header = ["", "measure"] + [headers.get(c, c) for c in columns]
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * 2 + "---:|" * len(columns)]
    previous = None
    for measure, row in table.iterrows():
        family = FAMILY.get(measure, "")
        cells = [family if family != previous else "", MEASURE_LABELS.get(measure, measure)]
        cells += [format_cell(row, c, MISSING) for c in columns]
        lines.append("| " + " | ".join(cells) + " |")
        previous = family
    text = "\n".join(lines) + "\n"
    for paragraph in as_notes(note):
        text += f"\n{paragraph}\n"
    return text


def to_latex(table: pd.DataFrame, caption: str | Sequence[str] | None = None,
             headers: Mapping[str, str] | None = None) -> str:
    """The table in the paper's layout as a LaTeX ``table`` (needs ``booktabs``); the notes
    (already LaTeX) form the caption."""
    columns = display_columns(table)
    headers = {**AXIS_LABELS, **(headers or {})}
    lines = [
        "\\begin{table}[t]",
        "\\centering",
        "\\small",
        "\\begin{tabular}{ll" + "r" * len(columns) + "}",
        "\\toprule",
        " & & " + " & ".join(latex_escape(headers.get(c, c)) for c in columns) + " \\\\",
        "\\midrule",
    ]
    previous = None
    for measure, row in table.iterrows():
        family = FAMILY.get(measure, "")
        if previous is not None and family != previous:
            lines.append("\\midrule")
        cells = [family if family != previous else "", MEASURE_LATEX.get(measure, measure)]
        cells += [latex_escape(format_cell(row, c, "---")) for c in columns]
        lines.append(" & ".join(cells) + " \\\\")
        previous = family
    lines += ["\\bottomrule", "\\end{tabular}"]
    notes = as_notes(caption)
    if notes:
        lines.append("\\caption{" + " ".join(notes) + "}")
    lines.append("\\end{table}")
    return "\n".join(lines) + "\n"


_LATEX_SPECIAL = {"\\": "\\textbackslash{}", "&": "\\&", "%": "\\%", "$": "\\$", "#": "\\#",
                  "_": "\\_", "{": "\\{", "}": "\\}", "~": "\\textasciitilde{}", "^": "\\^{}",
                  "∅": "$\\emptyset$"}


def latex_escape(text: str) -> str:
    """Plain text for LaTeX: its special characters escaped (in one pass, so that an
    escape is never escaped again)."""
    return "".join(_LATEX_SPECIAL.get(char, char) for char in str(text))


def k_note(k: Mapping[str, int] | None, generalization: str) -> str:
    """One line saying what the table ranks against and at which k."""
    target = "test accuracy" if generalization == "test_acc" else "minus the generalization gap"
    text = f"Granulated Kendall coefficients (Jiang et al., 2020) against {target}"
    if k:
        text += "; " + ", ".join(f"{m}: k={v}" for m, v in sorted(k.items()))
    return text + "."


def _check_axes(axes: Sequence[str]) -> None:
    unknown = [a for a in axes if a not in AXIS_COLUMNS]
    if unknown:
        raise ValueError(f"unknown Kendall axis/axes {unknown}; known: {list(AXES)}")
    if len(set(axes)) != len(axes):
        raise ValueError(f"Kendall axes listed twice: {list(axes)}")
