"""Figure 8 (appendix A.4): histogram of the models' test accuracies.

Settings (``figures.fig8``): ``bins`` (default 20).
"""

from __future__ import annotations

from collections.abc import Mapping

import numpy as np
from matplotlib.figure import Figure
from matplotlib.ticker import MaxNLocator

from intraclass.figures.common import FigureInputs, percent
from intraclass.figures.style import colors, new_figure, resolve_options, styled

SETTINGS = {"bins": 20}


@styled
def plot_fig8(test_acc, bins: int = 20, *, style: Mapping) -> Figure:
    """Histogram of test accuracies (fractions in [0, 1] or percent)."""
    values = percent(test_acc)
    values = values[np.isfinite(values)]
    if values.size == 0:
        raise ValueError("figure 8: no test accuracy to draw")
    figure, (ax,) = new_figure(style, 1, height_rows=1.25, width_fraction=0.55)
    ax.hist(values, bins=int(bins), color=colors(style, 1)[0], edgecolor="white", linewidth=0.4)
    ax.set_xlabel("test accuracy (%)")
    ax.set_ylabel("models")
    ax.yaxis.set_major_locator(MaxNLocator(integer=True))
    ax.set_title(f"{values.size} models")
    return figure


def render(inputs: FigureInputs, style: Mapping | None, settings: Mapping | None) -> Figure:
    options = resolve_options(SETTINGS, settings, "fig8 setting")
    return plot_fig8(inputs.models["test_acc"], int(options["bins"]), style=style)
