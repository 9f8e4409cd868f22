"""Figure 6: the measures over the course of training, for the evolution models.

Paper Sec. 4.4 follows three models of different generalization performance: the
measures at each saved checkpoint (``epoch{E}``) and at the end of training (``final``,
placed at the number of epochs the model ran). One panel per measure, one line per model,
labelled with its test accuracy; the values are the ``scope == total`` rows (the
configured k of each measure, given on each panel's y axis). Epochs are whole numbers, and
so are the ticks of the epoch axis.

Settings (``figures.fig6``):

- ``models`` (default ``null``: every model with epoch checkpoints): model ids to draw;
- ``measures`` (default: every measure with total rows): which panels.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import numpy as np
import pandas as pd
from matplotlib.figure import Figure
from matplotlib.ticker import MaxNLocator

from intraclass.figures.common import FigureInputs, checkpoint_epoch, measures_in, percent, require, rows
from intraclass.figures.style import colors, new_figure, resolve_options, styled
from intraclass.names import MEASURE_MATHTEXT, NEURON_LEVEL

SETTINGS = {"models": None, "measures": None}


def evolution_table(total_rows: pd.DataFrame, models: pd.DataFrame) -> pd.DataFrame:
    """Columns model, measure, k, epoch, value, test_acc from the total rows of all checkpoints."""
    duplicated = total_rows.duplicated(["model", "measure", "checkpoint"])
    if duplicated.any():
        first = total_rows[duplicated].iloc[0]
        raise ValueError(f"figure 6: several total values of {first['measure']} for model "
                         f"{first['model']} at {first['checkpoint']}")
    info = models.set_index("model")
    table = total_rows[["model", "measure", "checkpoint", "value"]].copy()
    table["k"] = total_rows["k"] if "k" in total_rows.columns else np.nan
    final = table["model"].map(info["epochs_run"]) if "epochs_run" in info.columns else [np.nan] * len(table)
    table["epoch"] = [checkpoint_epoch(c, f) for c, f in zip(table["checkpoint"].astype(str), final)]
    table["test_acc"] = table["model"].map(info["test_acc"])
    return table.sort_values(["model", "measure", "epoch"]).reset_index(drop=True)


def value_label(measure: str, ks) -> str:
    """The y-axis label of a measure's panel: its value and the top-k it was computed at
    (c1, c3: neurons; c2, c4: layers; docs/measures.md)."""
    ks = sorted({int(k) for k in pd.to_numeric(pd.Series(ks), errors="coerce").dropna()})
    if len(ks) != 1:
        return "value"
    unit = "neurons" if measure in NEURON_LEVEL else "layers"
    return f"value (top {ks[0]} {unit[:-1] if ks[0] == 1 else unit})"


@styled
def plot_fig6(evolution: pd.DataFrame, measures: Sequence[str], *, style: Mapping) -> Figure:
    """One panel per measure: value against epoch, one line per model (best first)."""
    if evolution.empty or not measures:
        raise ValueError("figure 6: no measure values at training checkpoints")
    order = (evolution.drop_duplicates("model").sort_values("test_acc", ascending=False)["model"].tolist())
    figure, axes = new_figure(style, len(measures))
    palette = dict(zip(order, colors(style, len(order))))
    accuracy = dict(zip(evolution["model"], percent(evolution["test_acc"])))
    for ax, measure in zip(axes, measures):
        part = evolution[evolution["measure"] == measure]
        for model in order:
            line = part[part["model"] == model]
            ax.plot(line["epoch"], line["value"], marker="o", markersize=2.5, color=palette[model],
                    label=f"{accuracy[model]:.1f}% test acc.")
        ax.set_title(MEASURE_MATHTEXT.get(measure, measure))
        ax.set_xlabel("epoch")
        ax.set_ylabel(value_label(measure, part["k"]))
        ax.xaxis.set_major_locator(MaxNLocator(integer=True))  # no fractional epochs
        ax.grid(alpha=0.3, linewidth=0.5)
    handles, labels = axes[0].get_legend_handles_labels()
    figure.legend(handles, labels, loc="outside lower center", ncols=min(len(order), 4), frameon=False)
    return figure


def render(inputs: FigureInputs, style: Mapping | None, settings: Mapping | None) -> Figure:
    options = resolve_options(SETTINGS, settings, "fig6 setting")
    total = rows(require(inputs.measures, "measures", "6"), "total", checkpoint=None)
    evolving = sorted(set(total.loc[total["checkpoint"].astype(str) != "final", "model"]))
    chosen = evolving if options["models"] is None else list(options["models"])
    missing = [m for m in chosen if m not in evolving]
    if missing:
        raise ValueError(f"figure 6: model(s) {missing} have no epoch checkpoints; those that "
                         f"do: {evolving}")
    total = total[total["model"].isin(chosen)]
    names = measures_in(list(pd.unique(total["measure"])), options["measures"], "6")
    evolution = evolution_table(total[total["measure"].isin(names)], inputs.models)
    return plot_fig6(evolution, names, style=style)
