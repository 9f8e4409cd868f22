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

Reading it without the code: each row is headed by the subclass's name (and its
superclass's, from the store's attributes) and its neuron as "layer L of N (stage S),
neuron n of W": L counts the measured BN->ReLU layers in forward order from 1, S is the
network stage (1-4) the layer belongs to, n counts the layer's channels from 1. Every
panel is a density histogram (y axis "density", x axis "pre-activation"); the dotted
line at 0 is the ReLU threshold.

Settings (``figures.fig7``):

- ``model`` (default ``null``: the model the stores were extracted from, read from their
  attributes): the model id whose ``top_neuron`` rows choose the neurons;
- ``bins`` (default 30): histogram bins per panel.

When that model's status is not ok (training diverged: its stores are skipped stores; or
unmeasurable), the figure is one placeholder panel naming the model, its status and reason
(the model is chosen when the workflow is planned, before training: no other model's
activations were extracted to fall back on; choose another with ``model`` or
``evolution.models``).
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import numpy as np
import pandas as pd
from matplotlib.figure import Figure

from intraclass.figures.common import FigureInputs, checkpoint_epoch, exclusion, require, rows
from intraclass.figures.style import colors, placeholder_figure, resolve_options, styled

SETTINGS = {"model": None, "bins": 30}


@dataclass
class NeuronPanel:
    """One row of Fig. 7: a subclass's neuron over the checkpoints.

    label: the row's heading (subclass name, selectivity, the neuron's place in the
    network; see :func:`row_label`); inside[c] / rest[c]: 1-D float arrays, the neuron's
    pre-activations at checkpoint c on the samples of the subclass / of the rest of its
    superclass.
    """

    label: str
    checkpoints: list[str]
    inside: list[np.ndarray]
    rest: list[np.ndarray]


@styled
def plot_fig7(panels: Sequence[NeuronPanel], bins: int = 30, *, style: Mapping) -> Figure:
    """A grid of density histograms: one row per panel (a subfigure headed by the panel's
    label), one column per checkpoint."""
    if not panels or not panels[0].checkpoints:
        raise ValueError("figure 7: nothing to draw (no subclass or no checkpoint)")
    columns = len(panels[0].checkpoints)
    height = float(style["panel_height"]) * 1.25 * len(panels)
    figure = Figure(figsize=(float(style["width"]), height), layout="constrained")
    inside_color, rest_color = colors(style, 2)
    for panel, row in zip(panels, figure.subfigures(len(panels), 1, squeeze=False)[:, 0]):
        row.suptitle(panel.label, fontsize=style["font_size"])
        axes = row.subplots(1, columns, squeeze=False)[0]
        for col, (ax, name, inside, rest) in enumerate(zip(axes, panel.checkpoints, panel.inside, panel.rest)):
            both = np.concatenate([inside, rest])
            edges = np.histogram_bin_edges(both[np.isfinite(both)], bins=int(bins))
            ax.hist(rest, bins=edges, density=True, color=rest_color, alpha=0.55,
                    label="rest of its superclass")
            ax.hist(inside, bins=edges, density=True, color=inside_color, alpha=0.75,
                    label="samples of the subclass")
            ax.axvline(0.0, color="0.4", linewidth=0.5, linestyle=":")  # the ReLU threshold
            ax.set_title(name, fontsize=style["font_size"])
            ax.set_xlabel("pre-activation")
            if col == 0:
                ax.set_ylabel("density")
    handles, labels = figure.axes[0].get_legend_handles_labels()
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


def fine_names(store, key: str = "fine_names") -> list[str] | None:
    """Subclass names (``key="coarse_names"``: superclass names), which extraction records in
    the store's attributes (so the figure reads no file its rule does not declare); None
    (label ids) for a store without them."""
    names = store.attrs.get(key)
    return [str(n) for n in names] if names else None


def checkpoint_label(name: str, store) -> tuple[float, str]:
    """Sort key and column title of a checkpoint (final last)."""
    if name == "final":
        epoch = store.attrs.get("epoch") if hasattr(store, "attrs") else None
        return (np.inf, "final" if epoch is None else f"final (epoch {epoch})")
    return (checkpoint_epoch(name, np.inf), f"epoch {int(checkpoint_epoch(name, 0))}")


ROLES = {"top": "most selective subclass", "median": "median subclass"}


def class_name(names: Sequence[str] | None, label: int, kind: str) -> str:
    """The name of class ``label`` (``kind`` and the label id when there are no names)."""
    return str(names[label]) if names is not None and 0 <= label < len(names) else f"{kind} {label}"


def stage_of(layer: str) -> int | None:
    """The 1-based network stage of a measured layer, from its module path (``stages.S.``...,
    :func:`intraclass.models.measured_sites`); None for a name without one."""
    match = re.search(r"(?:^|\.)stages\.(\d+)\.", layer)
    return int(match.group(1)) + 1 if match else None


def neuron_place(layer: str, layer_names: Sequence[str], neuron: int, width: int) -> str:
    """Where a neuron sits, for a reader who has not seen the model's code:
    "layer L of N (stage S), neuron n of W", all counted from 1 in forward order."""
    stage = stage_of(layer)
    text = f"layer {list(layer_names).index(layer) + 1} of {len(layer_names)}"
    text += f" (stage {stage})" if stage is not None else ""
    return f"{text}, neuron {neuron + 1} of {width}"


def row_label(role: str, subclass: str, superclass: str, selectivity: float, where: str) -> str:
    """A row heading: which subclass, against what, how selective, and where its neuron is."""
    return (f"{ROLES.get(role, role)}: {subclass} (vs. the rest of {superclass}), "
            f"selectivity {selectivity:.2f}\nits most selective neuron: {where}")


def neuron_panels(stores: Sequence, checkpoints: Sequence[str], top_rows: pd.DataFrame,
                  names: Sequence[str] | None = None,
                  coarse_names: Sequence[str] | None = None) -> list[NeuronPanel]:
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
            layer_values = store.layers([layer])[0]  # (samples, neurons of the layer)
            values = layer_values[:, neuron]  # (samples,)
            fine, coarse = np.asarray(store.fine), np.asarray(store.coarse)
            members = fine == subclass
            if not members.any():
                raise ValueError(f"figure 7: subclass {subclass} has no sample in the store of "
                                 f"checkpoint {checkpoints[i]}")
            superclass = coarse[members][0]
            inside.append(values[members])
            rest.append(values[(coarse == superclass) & ~members])
        where = neuron_place(layer, list(stores[order[-1]].layer_names), neuron, layer_values.shape[1])
        label = row_label(role, class_name(names, subclass, "subclass"),
                          class_name(coarse_names, int(superclass), "superclass"),
                          float(row["value"]), where)
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
    why = exclusion(inputs, model)
    if why is not None:
        return placeholder_figure(f"Figure 7: evolution model {model} {why}:\nno pre-activations "
                                  "to draw. Choose a usable model with figures.fig7.model.", style=style)
    top = rows(measures, "top_neuron", measure="c1", model=model)
    first = inputs.stores[0] if inputs.stores else None
    panels = neuron_panels(inputs.stores, inputs.checkpoints, top,
                           fine_names(first) if first is not None else None,
                           fine_names(first, "coarse_names") if first is not None else None)
    return plot_fig7(panels, int(options["bins"]), style=style)
