"""Figure 5: each measure per layer, averaged over the models of one depth.

Paper Sec. 4.3: "we select 64 models which have the same depth hyperparameter value. We
then compute the four measures on a layer-level basis (we use the top-5 neurons of each
layer for the neuron-level measures) and average the resulting values over the 64
models." The per-layer values are the ``scope == layer`` rows of the final checkpoint
(the measures stage computes them with ``layer_k``); layers are in forward order (the
order of the measures file). The band is +- one standard deviation over the models.

Settings (``figures.fig5``):

- ``depth`` (default ``null``: the depth shared by the most models, the smaller on a
  tie): the depth factor of the models averaged; a study whose models.csv has no
  ``depth`` column (a model zoo without one, docs/zoo.md) averages all its models;
- ``measures`` (default: every measure with layer rows): which panels;
- ``k`` (default ``null``: the single k of the layer rows): which layer k to draw.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import numpy as np
import pandas as pd
from matplotlib.figure import Figure
from matplotlib.ticker import MaxNLocator

from intraclass.figures.common import FigureInputs, measures_in, one_k, require, rows
from intraclass.figures.style import colors, new_figure, resolve_options, styled
from intraclass.names import MEASURE_MATHTEXT, NEURON_LEVEL

SETTINGS = {"depth": None, "measures": None, "k": None}


def layer_means(layer_rows: pd.DataFrame) -> pd.DataFrame:
    """Mean, std and number of models per (measure, layer), layers in first-seen order.

    layer_rows: tidy rows with columns model, measure, layer, value.
    """
    order = {name: i for i, name in enumerate(pd.unique(layer_rows["layer"]))}
    stats = (layer_rows.groupby(["measure", "layer"], sort=False)["value"]
             .agg(mean="mean", std=lambda v: float(np.std(v)), models="count").reset_index())
    stats["position"] = stats["layer"].map(order)
    return stats.sort_values(["measure", "position"]).reset_index(drop=True)


@styled
def plot_fig5(stats: pd.DataFrame, measures: Sequence[str], title: str | None = None,
              *, style: Mapping) -> Figure:
    """One panel per measure: mean (line) +- std (band) against the layer index (1-based)."""
    if not measures:
        raise ValueError("figure 5: no measure has per-layer values")
    figure, axes = new_figure(style, len(measures))
    color = colors(style, 1)[0]
    for ax, measure in zip(axes, measures):
        part = stats[stats["measure"] == measure].sort_values("position")
        layer = np.arange(1, len(part) + 1)
        mean, std = part["mean"].to_numpy(float), part["std"].to_numpy(float)
        ax.plot(layer, mean, marker="o", markersize=2.5, color=color)
        ax.fill_between(layer, mean - std, mean + std, color=color, alpha=0.2, linewidth=0)
        ax.set_title(MEASURE_MATHTEXT.get(measure, measure))
        ax.set_xlabel("layer")
        ax.xaxis.set_major_locator(MaxNLocator(integer=True))
        ax.grid(alpha=0.3, linewidth=0.5)
    if title:
        figure.suptitle(title, fontsize=style["font_size"])
    return figure


def pick_depth(models: pd.DataFrame, depth: float | None) -> float:
    counts = models["depth"].value_counts()
    if depth is None:
        return float(counts[counts == counts.max()].index.min())
    if float(depth) not in set(counts.index.astype(float)):
        raise ValueError(f"figure 5: no model of depth {depth}; depths: {sorted(counts.index)}")
    return float(depth)


def render(inputs: FigureInputs, style: Mapping | None, settings: Mapping | None) -> Figure:
    options = resolve_options(SETTINGS, settings, "fig5 setting")
    measures = require(inputs.measures, "measures", "5")
    if "depth" in inputs.models.columns:
        depth = pick_depth(inputs.models, options["depth"])
        chosen = set(inputs.models.loc[inputs.models["depth"].astype(float) == depth, "model"])
        title = f"models of depth x{depth:g}"
    elif options["depth"] is not None:
        raise ValueError(f"figure 5: depth {options['depth']} is set but models.csv has no depth column")
    else:  # a zoo without a depth column
        chosen, title = set(inputs.models["model"]), "models"
    layer = rows(measures, "layer")
    layer = layer[layer["model"].isin(chosen)]
    names = measures_in(list(pd.unique(layer["measure"])), options["measures"], "5")
    # c1, c3 layer rows carry the k of their per-layer top-k (layer_k); c2, c4 have none.
    layer = pd.concat([one_k(layer[layer["measure"] == m], options["k"] if m in NEURON_LEVEL else None,
                             "5", f"{m} layer")
                       for m in names]) if names else layer
    stats = layer_means(layer)
    n = layer["model"].nunique()
    return plot_fig5(stats, names, f"{n} {title}", style=style)
