"""Figure 7: pre-activation distributions of the most selective neuron of the top and the
median subclass, across training checkpoints.

Paper Sec. 4.5: "For each of the 100 subclasses, we compute the selectivity value and
the index of the most selective neuron based on the part of Eq. 1 to which the median
operation is applied. We then rank the subclasses by their selectivity value, and display
the training dynamics of the neurons associated to the subclasses with maximum and median
selectivity values." The subclass, its neuron (layer + channel) and its selectivity are
the ``scope == top_neuron`` rows of c1 at the final checkpoint (the per-subclass c1 with
k = 1). With the subclasses sorted by decreasing selectivity, "top" is the first and
"median" the one at position n // 2 (the exact median for odd n, the upper middle for
even n). For each checkpoint, the neuron's pre-activations are drawn for the samples of
the subclass C_i and for the rest of its superclass S \\ C_i: the two groups Eq. 1 compares.

Settings (``figures.fig7``):

- ``model`` (default ``null``: the model the stores were extracted from, read from their
  attributes): the model id whose ``top_neuron`` rows choose the neurons;
- ``bins`` (default 30): histogram bins per panel.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import numpy as np
import pandas as pd
from matplotlib.figure import Figure

from intraclass.figures.common import FigureInputs, checkpoint_epoch, require, rows
from intraclass.figures.style import colors, new_figure, resolve_options, styled

SETTINGS = {"model": None, "bins": 30}


@dataclass
class NeuronPanel:
    """One row of Fig. 7: a subclass's neuron over the checkpoints.

    inside[c] / rest[c]: 1-D float arrays, the neuron's pre-activations at checkpoint c on
    the samples of the subclass / of the rest of its superclass.
    """

    label: str
    checkpoints: list[str]
    inside: list[np.ndarray]
    rest: list[np.ndarray]


@styled
def plot_fig7(panels: Sequence[NeuronPanel], bins: int = 30, *, style: Mapping) -> Figure:
    """A grid of histograms: one row per panel, one column per checkpoint."""
    if not panels or not panels[0].checkpoints:
        raise ValueError("figure 7: nothing to draw (no subclass or no checkpoint)")
    columns = len(panels[0].checkpoints)
    figure, axes = new_figure(style, len(panels) * columns, columns=columns,
                              height_rows=1.1 * len(panels))
    inside_color, rest_color = colors(style, 2)
    for row, panel in enumerate(panels):
        for col, (name, inside, rest) in enumerate(zip(panel.checkpoints, panel.inside, panel.rest)):
            ax = axes[row * columns + col]
            both = np.concatenate([inside, rest])
            edges = np.histogram_bin_edges(both[np.isfinite(both)], bins=int(bins))
            ax.hist(rest, bins=edges, density=True, color=rest_color, alpha=0.55,
                    label="rest of superclass")
            ax.hist(inside, bins=edges, density=True, color=inside_color, alpha=0.75, label="subclass")
            ax.axvline(0.0, color="0.4", linewidth=0.5, linestyle=":")  # the ReLU threshold
            ax.set_yticks([])
            ax.spines["left"].set_visible(False)
            if row == 0:
                ax.set_title(name)
            if row == len(panels) - 1:
                ax.set_xlabel("pre-activation")
            if col == 0:
                ax.set_ylabel(panel.label, fontsize=style["font_size"] - 1)
    handles, labels = axes[0].get_legend_handles_labels()
    figure.legend(handles, labels, loc="outside lower center", ncols=2, frameon=False)
    return figure


def top_and_median(top_rows: pd.DataFrame) -> list[tuple[str, pd.Series]]:
    """The (role, row) of the most selective and the median subclass (see module doc)."""
    if top_rows.empty:
        raise ValueError("figure 7: no c1 top_neuron rows at the final checkpoint")
    ranked = top_rows.sort_values("value", ascending=False, kind="stable").reset_index(drop=True)
    return [("top", ranked.iloc[0]), ("median", ranked.iloc[len(ranked) // 2])]


def layer_name(value, layer_names: Sequence[str]) -> str:
    """The store layer a ``layer`` cell names: a layer name, or its index in forward order."""
    if str(value) in layer_names:
        return str(value)
    try:
        index = int(float(value))
    except (TypeError, ValueError):
        index = -1
    if 0 <= index < len(layer_names) and float(value) == index:
        return layer_names[index]
    raise KeyError(f"figure 7: layer {value!r} is neither a layer of the store ({layer_names}) "
                   "nor an index into them")


def fine_names(store) -> list[str] | None:
    """Subclass names, which extraction records in the store's attributes (so the figure
    reads no file its rule does not declare); None (label ids) for a store without them."""
    names = store.attrs.get("fine_names")
    return [str(n) for n in names] if names else None


def checkpoint_label(name: str, store) -> tuple[float, str]:
    """Sort key and column title of a checkpoint (final last)."""
    if name == "final":
        epoch = store.attrs.get("epoch") if hasattr(store, "attrs") else None
        return (np.inf, "final" if epoch is None else f"final (epoch {epoch})")
    return (checkpoint_epoch(name, np.inf), f"epoch {int(checkpoint_epoch(name, 0))}")


def neuron_panels(stores: Sequence, checkpoints: Sequence[str], top_rows: pd.DataFrame,
                  names: Sequence[str] | None = None) -> list[NeuronPanel]:
    """Read the chosen neurons' pre-activations from each store (see module doc).

    stores: objects with ``layer_names``, ``layers(names)``, ``fine``, ``coarse`` (the
    :class:`intraclass.activations.ActivationStore` interface), aligned with ``checkpoints``.
    """
    if len(stores) != len(checkpoints):
        raise ValueError(f"figure 7: {len(stores)} stores for {len(checkpoints)} checkpoint names")
    if not stores:
        raise ValueError("figure 7: no activation store given")
    order = sorted(range(len(stores)), key=lambda i: checkpoint_label(checkpoints[i], stores[i])[0])
    titles = [checkpoint_label(checkpoints[i], stores[i])[1] for i in order]
    panels = []
    for role, row in top_and_median(top_rows):
        subclass, neuron = int(float(row["subclass"])), int(float(row["neuron"]))
        inside, rest = [], []
        layer = None
        for i in order:
            store = stores[i]
            if store.coarse is None:
                raise ValueError(f"figure 7: store of checkpoint {checkpoints[i]} has no superclass labels")
            layer = layer_name(row["layer"], list(store.layer_names))
            values = store.layers([layer])[0][:, neuron]  # (samples,)
            fine, coarse = np.asarray(store.fine), np.asarray(store.coarse)
            members = fine == subclass
            if not members.any():
                raise ValueError(f"figure 7: subclass {subclass} has no sample in the store of "
                                 f"checkpoint {checkpoints[i]}")
            superclass = coarse[members][0]
            inside.append(values[members])
            rest.append(values[(coarse == superclass) & ~members])
        name = names[subclass] if names is not None and 0 <= subclass < len(names) else f"subclass {subclass}"
        label = f"{role}: {name}\n{layer} #{neuron}\nselectivity {float(row['value']):.2f}"
        panels.append(NeuronPanel(label, titles, inside, rest))
    return panels


def render(inputs: FigureInputs, style: Mapping | None, settings: Mapping | None) -> Figure:
    options = resolve_options(SETTINGS, settings, "fig7 setting")
    measures = require(inputs.measures, "measures", "7")
    stored = {str(s.attrs.get("model_id")) for s in inputs.stores if s.attrs.get("model_id")}
    model = options["model"]
    if model is None:
        if len(stored) != 1:
            raise ValueError(f"figure 7: set figures.fig7.model; the stores name models {sorted(stored)}")
        model = stored.pop()
    elif stored and stored != {model}:
        raise ValueError(f"figure 7: settings name model {model!r} but the stores come from {sorted(stored)}")
    top = rows(measures, "top_neuron", measure="c1", model=model)
    panels = neuron_panels(inputs.stores, inputs.checkpoints, top,
                           fine_names(inputs.stores[0]) if inputs.stores else None)
    return plot_fig7(panels, int(options["bins"]), style=style)
