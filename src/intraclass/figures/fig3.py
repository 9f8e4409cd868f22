"""Figure 3: each measure against generalization performance, one panel per measure.

Paper Fig. 3 shows c1..c4 (columns) against test accuracy, one point per model; here the
sharpness measures (1/sigma', 1/sigma'', 1/alpha', 1/alpha'') get panels too, so the two
families can be compared by eye. Each panel's title gives Kendall's tau-a over all
models (:func:`intraclass.kendall.tau_a_columns`; the granulated score is in the table).

Settings (``figures.fig3``):

- ``measures`` (default: every measure in ``models.csv``): which panels, in this order;
- ``color_by`` (default ``null``): a hyperparameter column (``depth``, ``optimizer``, ...)
  whose values colour the points, with a legend;
- ``tau`` (default ``true``): show tau-a in the panel titles.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import numpy as np
import pandas as pd
from matplotlib.figure import Figure

from intraclass.figures.common import FigureInputs, generalization_axis, measures_in
from intraclass.figures.style import colors, new_figure, resolve_options, styled
from intraclass.kendall import generalization_values, tau_a_columns
from intraclass.names import MEASURE_LATEX

SETTINGS = {"measures": None, "color_by": None, "tau": True}


@styled
def plot_fig3(models: pd.DataFrame, measures: Sequence[str], generalization: str = "test_acc",
              color_by: str | None = None, tau: bool = True, *, style: Mapping) -> Figure:
    """Scatter of each measure column of ``models`` (x) against generalization (y)."""
    if not measures:
        raise ValueError("figure 3: no measure to draw (models.csv has no measure column)")
    y, ylabel = generalization_axis(models, generalization)
    rank_target = generalization_values(models, generalization)
    figure, axes = new_figure(style, len(measures))
    if color_by is not None and color_by not in models.columns:
        raise KeyError(f"figure 3: color_by {color_by!r} is not a column of models.csv")
    groups = sorted(models[color_by].unique()) if color_by else [None]
    palette = colors(style, len(groups))
    for ax, measure in zip(axes, measures):
        x = models[measure].to_numpy(float)
        for group, color in zip(groups, palette):
            mask = np.ones(len(models), bool) if group is None else (models[color_by] == group).to_numpy()
            ax.scatter(x[mask], y[mask], s=style["marker_size"], color=color, alpha=0.8,
                       linewidths=0, label=None if group is None else f"{color_by} {group}")
        if tau:  # plain tau-a over all models (not granulated): a reading aid
            ax.set_title(f"$\\tau$ = {tau_a_columns(x, rank_target)[0]:.2f}")
        ax.set_xlabel(MEASURE_LATEX.get(measure, measure))
        ax.grid(alpha=0.3, linewidth=0.5)
    for i, ax in enumerate(axes):
        if i % style["max_columns"] == 0:
            ax.set_ylabel(ylabel)
    if color_by:
        handles, labels = axes[0].get_legend_handles_labels()
        figure.legend(handles, labels, loc="outside lower center", ncols=min(len(groups), 6),
                      frameon=False)
    return figure


def render(inputs: FigureInputs, style: Mapping | None, settings: Mapping | None) -> Figure:
    options = resolve_options(SETTINGS, settings, "fig3 setting")
    measures = measures_in(list(inputs.models.columns), options["measures"], "3")
    measures = [m for m in measures if inputs.models[m].notna().any()]
    return plot_fig3(inputs.models, measures, inputs.generalization, options["color_by"],
                     bool(options["tau"]), style=style)
