"""Figure "rotation": layer rotation curves (Carbonnelle & De Vleeschouwer, their Fig. 1 style).

The layer rotation of layer ``l`` is the cosine distance ``1 - cos(w_l(0), w_l(t))``
between its kernel at initialization and at epoch ``t`` (docs/measures.md, "Layer
rotation"). The values are the tidy ``measure == "rotation"``, ``scope == "layer"`` rows
of ``measures.csv.gz`` (``layer`` = 0-based kernel index in forward order, drawn 1-based).

- First panel: the curve of every model at the end of training, one line per model,
  coloured by its generalization (test accuracy, or the gap when the study ranks by it)
  on a continuous colormap with a colour bar. Their finding: larger and more uniform
  rotations go with better test accuracy.
- One more panel per evolution model (checkpoints ``epoch{E}``): its curve at each
  checkpoint and at the end (``final``, placed at the epochs the model ran), coloured by
  epoch.

Settings (``figures.figrotation``):

- ``models`` (default ``null``: every usable model with epoch checkpoints): the evolution
  models that get a panel (``[]``: none); one whose status is not ok gets a placeholder
  panel with its status and reason;
- ``colormap`` (default ``viridis``): the colormap of both colourings.

Models whose status is not ok are left out (a diverged model has no curve); the first
panel's title counts them.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import matplotlib
import numpy as np
import pandas as pd
from matplotlib.cm import ScalarMappable
from matplotlib.colors import Normalize
from matplotlib.figure import Figure
from matplotlib.ticker import MaxNLocator

from intraclass.figures.common import FigureInputs, checkpoint_epoch, exclusion, generalization_axis, require, rows
from intraclass.figures.style import new_figure, placeholder, resolve_options, styled

SETTINGS = {"models": None, "colormap": "viridis"}
MEASURE = "rotation"


def rotation_curves(layer_rows: pd.DataFrame, models: pd.DataFrame) -> pd.DataFrame:
    """Columns model, checkpoint, epoch, layer (1-based), value, sorted; ``layer_rows``:
    the rotation layer rows of every checkpoint; ``models``: models.csv (epochs_run)."""
    table = layer_rows[["model", "checkpoint", "layer", "value"]].copy()
    table["checkpoint"] = table["checkpoint"].astype(str)
    table["layer"] = pd.to_numeric(table["layer"]).astype(int) + 1
    table["value"] = pd.to_numeric(table["value"])
    final = models.set_index("model")["epochs_run"] if "epochs_run" in models.columns else {}
    table["epoch"] = [checkpoint_epoch(c, final.get(m, np.nan)) for c, m in zip(table["checkpoint"], table["model"])]
    return table.sort_values(["model", "epoch", "layer"]).reset_index(drop=True)


@styled
def plot_rotation(curves: pd.DataFrame, color_values: Mapping[str, float], color_label: str,
                  evolution: Sequence[str] = (), colormap: str = "viridis",
                  placeholders: Mapping[str, str] | None = None, left_out: int = 0, *,
                  style: Mapping) -> Figure:
    """Final curves coloured by ``color_values`` (model -> number), then one panel per
    model of ``evolution`` with its curve at each checkpoint coloured by epoch; a model of
    ``placeholders`` (model -> why it has no curve) gets a panel with that text instead.
    ``left_out``: the number of models left out (status not ok), named in the first title."""
    placeholders = dict(placeholders or {})
    final = curves[curves["checkpoint"] == "final"]
    if final.empty:
        raise ValueError("figure rotation: no layer rotation values at the end of training")
    cmap = matplotlib.colormaps[colormap]
    figure, axes = new_figure(style, 1 + len(evolution))
    known = [v for v in color_values.values() if np.isfinite(v)]
    norm = Normalize(min(known, default=0.0), max(known, default=1.0))
    ax = axes[0]
    for model, line in final.groupby("model", sort=False):
        ax.plot(line["layer"], line["value"], color=cmap(norm(color_values.get(model, np.nan))),
                marker="o", markersize=2)
    figure.colorbar(ScalarMappable(norm=norm, cmap=cmap), ax=ax, label=color_label)
    ax.set_title("end of training" + (f" ({left_out} left out: status not ok)" if left_out else ""))
    for ax, model in zip(axes[1:], evolution):
        if model in placeholders:
            placeholder(ax, f"{model}\n{placeholders[model]}:\nno rotation curve", style)
            continue
        mine = curves[curves["model"] == model]
        epochs = sorted(mine["epoch"].unique())
        scale = Normalize(0.0, max(epochs) if epochs else 1.0)
        for epoch, line in mine.groupby("epoch"):
            ax.plot(line["layer"], line["value"], color=cmap(scale(epoch)), marker="o", markersize=2,
                    label=f"epoch {epoch:g}")
        ax.set_title(model, fontsize=style["font_size"] - 1)
        ax.legend(frameon=False)
    for ax in [a for a, m in zip(axes, [None, *evolution]) if m not in placeholders]:
        ax.set_xlabel("layer")
        ax.set_ylabel("layer rotation (1 - cos)")
        ax.xaxis.set_major_locator(MaxNLocator(integer=True))
        ax.grid(alpha=0.3, linewidth=0.5)
    return figure


def render(inputs: FigureInputs, style: Mapping | None, settings: Mapping | None) -> Figure:
    options = resolve_options(SETTINGS, settings, "figrotation setting")
    layer_rows = rows(require(inputs.measures, "measures", "rotation"), "layer", checkpoint=None,
                      measure=MEASURE)
    if layer_rows.empty:
        raise ValueError("figure rotation: measures.csv.gz has no layer rows of 'rotation' "
                         "(is rotation enabled for this study?)")
    curves = rotation_curves(layer_rows, inputs.models)
    evolving = sorted(set(curves.loc[curves["checkpoint"] != "final", "model"]))
    chosen = evolving if options["models"] is None else list(options["models"])
    placeholders = {m: exclusion(inputs, m) for m in chosen if m not in evolving}
    missing = [m for m, why in placeholders.items() if why is None]
    if missing:
        raise ValueError(f"figure rotation: model(s) {missing} have no epoch checkpoints; those "
                         f"that do: {evolving}")
    values, label = generalization_axis(inputs.models, inputs.generalization)
    color_values = dict(zip(inputs.models["model"], values))
    left_out = 0 if inputs.excluded is None else len(inputs.excluded)
    return plot_rotation(curves, color_values, label, chosen, options["colormap"], placeholders,
                         left_out, style=style)
