"""What the figures read: the collected tables (and, for Fig. 7, activation stores).

Every figure module has a pure ``plot_*`` function over DataFrames/arrays and a
``render(inputs, style, settings)`` that selects its data from :class:`FigureInputs`.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass, field, replace

import numpy as np
import pandas as pd

from intraclass.kendall import MEASURES


@dataclass
class FigureInputs:
    """models: ``models.csv``; measures: ``measures.csv.gz`` (tidy, with ``model``);
    kendall_k: ``kendall_k.csv``; stores: opened activation stores of one model and
    checkpoints: their names (Fig. 7 only); generalization: ``test_acc`` or ``gap``;
    n_test: the number of test images (Fig. 3's error bars; None = unknown); excluded:
    the ``models.csv`` rows whose status is not ok, which :func:`usable_inputs` moves here
    from ``models`` (None = not split yet)."""

    models: pd.DataFrame
    measures: pd.DataFrame | None = None
    kendall_k: pd.DataFrame | None = None
    stores: Sequence = field(default_factory=list)
    checkpoints: Sequence[str] = field(default_factory=list)
    generalization: str = "test_acc"
    n_test: int | None = None
    excluded: pd.DataFrame | None = None


@dataclass
class SkippedStore:
    """Stands in for the activation store of a model whose status is not ok (its extract
    job wrote a skipped store, :func:`intraclass.status.write_skipped_store`): ``attrs``
    holds ``model_id`` (the store's folder, ``activations/{model}/{checkpoint}.zarr``),
    ``status`` and ``reason``; there are no pre-activations."""

    attrs: dict


def usable_inputs(inputs: FigureInputs) -> FigureInputs:
    """``inputs`` without the models whose status is not ok (every figure leaves them out,
    :func:`intraclass.evaluation.notes.split_usable`): their ``models`` rows move to
    ``excluded`` and their ``measures`` rows are dropped (an unmeasurable model can still
    have rotation rows). Idempotent."""
    from intraclass.evaluation.notes import split_usable

    models, excluded = split_usable(inputs.models)
    if inputs.excluded is not None:
        excluded = pd.concat([inputs.excluded, excluded], ignore_index=True)
    measures = inputs.measures
    if measures is not None and len(excluded):
        measures = measures[~measures["model"].isin(excluded["model"])]
    return replace(inputs, models=models, measures=measures, excluded=excluded)


def exclusion(inputs: FigureInputs, model: str) -> str | None:
    """Why ``model`` has nothing to draw ("has status diverged (reason)"), or None when it
    is usable: its row in ``inputs.excluded`` or a skipped store of it."""
    found = []
    if inputs.excluded is not None and len(inputs.excluded):
        found += [(row.get("status"), row.get("reason")) for _, row in inputs.excluded.iterrows()
                  if row["model"] == model]
    found += [(s.attrs.get("status"), s.attrs.get("reason")) for s in inputs.stores
              if isinstance(s, SkippedStore) and s.attrs.get("model_id") == model]
    if not found:
        return None
    status, reason = found[0]
    known = isinstance(reason, str) and reason
    return f"has status {status} ({reason if known else 'no reason given'})"


def require(frame: pd.DataFrame | None, what: str, fig: str) -> pd.DataFrame:
    if frame is None:
        raise ValueError(f"figure {fig} needs the {what} table")
    return frame


def rows(measures: pd.DataFrame, scope: str, checkpoint: str | None = "final",
         measure: str | None = None, model: str | None = None) -> pd.DataFrame:
    """Tidy rows of one scope (and checkpoint / measure / model when given)."""
    keep = measures["scope"] == scope
    if checkpoint is not None:
        keep &= measures["checkpoint"].astype(str) == checkpoint
    if measure is not None:
        keep &= measures["measure"] == measure
    if model is not None:
        keep &= measures["model"] == model
    return measures[keep]


def measures_in(names: Sequence[str], wanted: Sequence[str] | None, fig: str) -> list[str]:
    """The measures to draw: ``wanted`` (checked against ``names``) or all of ``names``
    in the paper's order."""
    ordered = [m for m in MEASURES if m in names]
    if wanted is None:
        return ordered
    unknown = [m for m in wanted if m not in ordered]
    if unknown:
        raise ValueError(f"figure {fig}: measure(s) {unknown} not available; available: {ordered}")
    return list(wanted)


def checkpoint_epoch(name: str, final_epoch: float) -> float:
    """``epoch{E}`` -> E; ``final`` -> the epochs the model ran."""
    if name == "final":
        return float(final_epoch)
    match = re.fullmatch(r"epoch(\d+)", str(name))
    if not match:
        raise ValueError(f"checkpoint name {name!r} is neither 'final' nor 'epoch<E>'")
    return float(match.group(1))


def percent(values) -> np.ndarray:
    """Accuracies in [0, 1] as percent (left as they are when already above 1)."""
    values = np.asarray(values, dtype=float)
    return values * 100.0 if np.nanmax(values, initial=0.0) <= 1.0 else values


def generalization_axis(models: pd.DataFrame, generalization: str) -> tuple[np.ndarray, str]:
    """The y values and label for 'generalization performance' (Figs. 3, 8)."""
    if generalization == "gap":
        return percent(models["gap"]), "generalization gap (%)"
    return percent(models["test_acc"]), "test accuracy (%)"


def one_k(frame: pd.DataFrame, k: int | None, fig: str, what: str) -> pd.DataFrame:
    """Keep the rows at ``k``; with ``k`` None the rows must have a single k value."""
    ks = sorted(frame["k"].dropna().unique().tolist())
    if k is not None:
        chosen = frame[frame["k"] == k]
        if chosen.empty:
            raise ValueError(f"figure {fig}: no {what} rows at k={k}; available k: {ks}")
        return chosen
    if len(ks) > 1:
        raise ValueError(f"figure {fig}: {what} rows have several k values {ks}; set the "
                         "figure's 'k' setting to choose one")
    return frame
