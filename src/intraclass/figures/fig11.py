"""Figure 11 (appendix A.5): distribution of per-subclass selectivity with k = 1.

Paper: "For each subclass, neural subclass selectivity is computed based on the most
selective neuron in the neural network (i.e. k = 1)": the per-subclass c1 before the
median, at k = 1. Read from the ``scope == subclass`` rows of c1 at ``k`` (final
checkpoint); at k = 1 the ``top_neuron`` rows hold the same values and are used when
there are no subclass rows at k = 1.

Settings (``figures.fig11``):

- ``model`` (default ``null``: the model with the highest test accuracy, as the paper's
  Fig. 7 model): whose subclasses;
- ``k`` (default 1): the top-k of the per-subclass values;
- ``bins`` (default 20).
"""

from __future__ import annotations

from collections.abc import Mapping

import numpy as np
from matplotlib.figure import Figure
from matplotlib.ticker import MaxNLocator

from intraclass.figures.common import FigureInputs, percent, require, rows
from intraclass.figures.style import colors, new_figure, resolve_options, styled

SETTINGS = {"model": None, "k": 1, "bins": 20}


@styled
def plot_fig11(selectivity, bins: int = 20, title: str | None = None, *, style: Mapping) -> Figure:
    """Histogram of per-subclass selectivity values, the median marked."""
    values = np.asarray(selectivity, dtype=float)
    values = values[np.isfinite(values)]
    if values.size == 0:
        raise ValueError("figure 11: no per-subclass selectivity to draw")
    figure, (ax,) = new_figure(style, 1, height_rows=1.25, width_fraction=0.55)
    ax.hist(values, bins=int(bins), color=colors(style, 1)[0], edgecolor="white", linewidth=0.4)
    median = float(np.median(values))  # = c1 at this k (Eq. 1's median over subclasses)
    ax.axvline(median, color="0.2", linestyle="--", linewidth=0.8)
    ax.set_xlabel("neural subclass selectivity")
    ax.set_ylabel("subclasses")
    ax.yaxis.set_major_locator(MaxNLocator(integer=True))
    ax.set_title((f"{title}\n" if title else "") + f"median (dashed) {median:.2f}")
    return figure


def render(inputs: FigureInputs, style: Mapping | None, settings: Mapping | None) -> Figure:
    options = resolve_options(SETTINGS, settings, "fig11 setting")
    measures = require(inputs.measures, "measures", "11")
    models = inputs.models
    model = options["model"]
    if model is None:
        model = models.loc[models["test_acc"].idxmax(), "model"]
    elif model not in set(models["model"]):
        raise ValueError(f"figure 11: unknown model {model!r}")
    k = int(options["k"])
    chosen = rows(measures, "subclass", measure="c1", model=model)
    chosen = chosen[chosen["k"] == k]
    if chosen.empty and k == 1:
        chosen = rows(measures, "top_neuron", measure="c1", model=model)
    if chosen.empty:
        raise ValueError(f"figure 11: no per-subclass c1 values at k={k} for model {model}")
    accuracy = percent(models.loc[models["model"] == model, "test_acc"])[0]
    title = f"{len(chosen)} subclasses, {accuracy:.1f}% test acc."
    return plot_fig11(chosen["value"], int(options["bins"]), title, style=style)
