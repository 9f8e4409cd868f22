"""Figure 3: each measure against generalization performance, one panel per measure.

Paper Fig. 3 shows c1..c4 (columns) against test accuracy, one point per model; here the
sharpness measures (1/sigma', 1/sigma'', 1/alpha', 1/alpha'') get panels too, so the two
families can be compared by eye. The x axis shows the stored value (1/sigma' is 1/sigma').
Each panel's title gives Kendall's tau-a over all models of the *oriented* measure
(:func:`intraclass.kendall.direction` times the value, as in the tables: positive = the
measure ranks the models the way their generalization goes; a sharpness panel says
"negated"); the granulated score is in the table.

Each point carries a +-1 standard-error bar on its test accuracy, SE = sqrt(a (1 - a) / n)
with ``n`` the number of test images (from ``test_correct.npz``; no bars when unknown).
A sharpness value whose search ended on a bound of its interval (``<measure>_at_bound``
in ``models.csv``) is drawn with a distinct marker, named in the legend. Models whose
``status`` is not ``ok`` are left out (as in every figure, :func:`intraclass.figures.render_figure`).

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
from matplotlib.lines import Line2D

from intraclass.evaluation.bootstrap import standard_error
from intraclass.evaluation.notes import at_bound
from intraclass.figures.common import FigureInputs, generalization_axis, measures_in
from intraclass.figures.style import colors, new_figure, resolve_options, styled
from intraclass.kendall import direction, generalization_values, tau_a_columns
from intraclass.names import MEASURE_MATHTEXT

SETTINGS = {"measures": None, "color_by": None, "tau": True}
BOUND_MARKER = "x"
BOUND_LABEL = "search ended on a bound"


def panel_title(x: np.ndarray, measure: str, rank_target: np.ndarray) -> str:
    """tau-a of the oriented measure over all models, saying when it is negated."""
    tau = tau_a_columns(direction(measure) * x, rank_target)[0]
    return f"$\\tau$ = {tau:.2f}" + (" (negated)" if direction(measure) < 0 else "")


@styled
def plot_fig3(models: pd.DataFrame, measures: Sequence[str], generalization: str = "test_acc",
              color_by: str | None = None, tau: bool = True, n_test: int | None = None, *,
              style: Mapping) -> Figure:
    """Scatter of each measure column of ``models`` (x) against generalization (y), with
    +-1 SE bars on the accuracy when ``n_test`` is known."""
    if not measures:
        raise ValueError("figure 3: no measure to draw (models.csv has no measure column)")
    y, ylabel = generalization_axis(models, generalization)
    rank_target = generalization_values(models, generalization)
    # SE of the test accuracy in percent; the gap has the same SE (training accuracy fixed)
    yerr = 100.0 * standard_error(models["test_acc"].to_numpy(float), n_test) if n_test else None
    figure, axes = new_figure(style, len(measures))
    if color_by is not None and color_by not in models.columns:
        raise KeyError(f"figure 3: color_by {color_by!r} is not a column of models.csv")
    groups = sorted(models[color_by].unique()) if color_by else [None]
    palette = colors(style, len(groups))
    any_bound = False
    for ax, measure in zip(axes, measures):
        x = models[measure].to_numpy(float)
        bound = at_bound(models, measure)
        any_bound |= bool(bound[~np.isnan(x)].any())
        for group, color in zip(groups, palette):
            mask = np.ones(len(models), bool) if group is None else (models[color_by] == group).to_numpy()
            if yerr is not None:
                ax.errorbar(x[mask], y[mask], yerr=yerr[mask], fmt="none", ecolor=color, alpha=0.4,
                            elinewidth=0.6, capsize=0)
            ax.scatter(x[mask & ~bound], y[mask & ~bound], s=style["marker_size"], color=color, alpha=0.8,
                       linewidths=0, label=None if group is None else f"{color_by} {group}")
            ax.scatter(x[mask & bound], y[mask & bound], s=style["marker_size"] * 2, color=color,
                       marker=BOUND_MARKER, linewidths=0.8)
        if tau:  # plain tau-a over all models (not granulated): a reading aid
            ax.set_title(panel_title(x, measure, rank_target))
        ax.set_xlabel(MEASURE_MATHTEXT.get(measure, measure))
        ax.grid(alpha=0.3, linewidth=0.5)
    for i, ax in enumerate(axes):
        if i % style["max_columns"] == 0:
            ax.set_ylabel(ylabel + (" ± 1 SE" if yerr is not None else ""))
    _legend(figure, axes[0], color_by, len(groups), any_bound)
    return figure


def _legend(figure: Figure, ax, color_by: str | None, groups: int, any_bound: bool) -> None:
    handles, labels = ax.get_legend_handles_labels() if color_by else ([], [])
    if any_bound:
        handles.append(Line2D([], [], marker=BOUND_MARKER, linestyle="none", color="0.3"))
        labels.append(BOUND_LABEL)
    if handles:
        figure.legend(handles, labels, loc="outside lower center", ncols=min(len(handles), 6), frameon=False)


def render(inputs: FigureInputs, style: Mapping | None, settings: Mapping | None) -> Figure:
    options = resolve_options(SETTINGS, settings, "fig3 setting")
    models = inputs.models  # usable models only (render_figure)
    measures = measures_in(list(models.columns), options["measures"], "3")
    measures = [m for m in measures if models[m].notna().any()]
    return plot_fig3(models, measures, inputs.generalization, options["color_by"],
                     bool(options["tau"]), getattr(inputs, "n_test", None), style=style)
