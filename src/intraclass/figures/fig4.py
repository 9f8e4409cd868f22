"""Figure 4: granulated Kendall coefficient of c1 and c3 as a function of k.

Paper Fig. 4: "The k parameter associated to c1 is multiplied by 5 in the plots, to
enable comparison with c3 (there are 5 subclasses in each of CIFAR100's superclasses)":
c1's k counts neurons per subclass, c3's per class, so c1 is drawn at k x (subclasses per
superclass) -- the number of neurons per superclass in both cases. The curves come from
``kendall_k.csv`` (:func:`intraclass.kendall.kendall_k_curve`; oriented measures, positive =
ranks the models the way their generalization goes). When the file has the bootstrap
interval of the drawn column (``<axis>_lo``, ``<axis>_hi``: percentile interval of a paired
bootstrap over test images, :mod:`intraclass.evaluation.bootstrap`), each curve gets a
shaded band. One panel, 0.55 x the style's width (the paper puts the studies side by side).

Settings (``figures.fig4``):

- ``c1_k_factor`` (default ``null``): the number of subclasses per superclass (5 for
  CIFAR-100; 10/3 for the Fashion-MNIST hierarchy of 4+3+3). ``null`` draws c1 at its own
  k and says so on the axis;
- ``log_x`` (default ``true``): logarithmic k axis (the paper's k spans 1 to ~900);
- ``axis`` (default ``total``): a column of ``kendall_k.csv`` to draw instead of the
  total score (one of the 8 axes, e.g. ``batch_size``).
"""

from __future__ import annotations

from collections.abc import Mapping

import pandas as pd
from matplotlib.figure import Figure
from matplotlib.ticker import FuncFormatter, NullFormatter

from intraclass.figures.common import FigureInputs, require
from intraclass.figures.style import colors, new_figure, resolve_options, styled
from intraclass.kendall import AXIS_LABELS, HIGH, LOW
from intraclass.names import MEASURE_MATHTEXT

SETTINGS = {"c1_k_factor": None, "log_x": True, "axis": "total"}


@styled
def plot_fig4(curve: pd.DataFrame, c1_k_factor: float | None = None, log_x: bool = True,
              axis: str = "total", *, style: Mapping) -> Figure:
    """Lines of ``curve[axis]`` against k for c1 and c3 (long format: measure, k, axis)."""
    if axis not in curve.columns:
        raise KeyError(f"figure 4: kendall_k.csv has no column {axis!r}")
    measures = [m for m in ("c1", "c3") if (curve["measure"] == m).any()]
    if not measures:
        raise ValueError("figure 4: kendall_k.csv has no k sweep of c1 or c3")
    figure, (ax,) = new_figure(style, 1, height_rows=1.25, width_fraction=0.55)
    for measure, color in zip(measures, colors(style, 2)):
        part = curve[curve["measure"] == measure].sort_values("k")
        k = part["k"].to_numpy(float)
        label = MEASURE_MATHTEXT[measure]
        if measure == "c1" and c1_k_factor:
            k = k * float(c1_k_factor)
            label += f" (k $\\times$ {float(c1_k_factor):.3g})"
        ax.plot(k, part[axis].to_numpy(float), color=color, label=label)
        low, high = f"{axis}{LOW}", f"{axis}{HIGH}"
        if low in part.columns and high in part.columns and part[low].notna().any():
            ax.fill_between(k, part[low].to_numpy(float), part[high].to_numpy(float), color=color,
                            alpha=0.2, linewidth=0, label=f"{label}, bootstrap interval")
    if log_x:
        ax.set_xscale("log")
        plain = FuncFormatter(lambda value, _: f"{value:g}")  # 1, 10, 100 rather than 10^0
        ax.xaxis.set_major_formatter(plain)
        low, high = ax.get_xlim()
        # under a decade there is at most one major tick: label the minor ones too
        ax.xaxis.set_minor_formatter(plain if high / low < 10 else NullFormatter())
    ax.set_xlabel("k (neurons per class)" if c1_k_factor else "k (c1: per subclass, c3: per class)")
    ax.set_ylabel("Kendall " + ("total score" if axis == "total" else AXIS_LABELS.get(axis, axis)))
    ax.grid(alpha=0.3, linewidth=0.5)
    ax.legend(frameon=False)
    return figure


def render(inputs: FigureInputs, style: Mapping | None, settings: Mapping | None) -> Figure:
    options = resolve_options(SETTINGS, settings, "fig4 setting")
    curve = require(inputs.kendall_k, "kendall_k", "4")
    return plot_fig4(curve, options["c1_k_factor"], bool(options["log_x"]), options["axis"], style=style)
