"""Shared look of every figure, and atomic saving as PDF + PNG.

Style keys (``params.style``, i.e. ``figures.style`` of a study's config); the defaults
give figures readable at the paper's size (ICLR text width 5.5 in, 7-8 pt text):

=============== ======== ==================================================================
key             default  meaning
=============== ======== ==================================================================
width           5.5      figure width in inches (the full text width of the paper)
panel_height    1.7      height of one row of panels, in inches
max_columns     4        panels per row before wrapping
font_size       7        base font size in points (titles +1, tick labels -1)
dpi             300      resolution of the PNG (the PDF is vector)
marker_size     8        scatter marker area in points^2
line_width      1.2      line width in points
colormap        tab10    matplotlib colormap for categories (models, subclasses, values)
=============== ======== ==================================================================

Figures are built on :class:`matplotlib.figure.Figure` directly (no pyplot state), so
many can be drawn in one process and tests stay headless.
"""

from __future__ import annotations

import functools
import logging
import math
import os
from collections.abc import Callable, Mapping

import matplotlib
from matplotlib.figure import Figure

from intraclass.runtime import write_atomic

STYLE_DEFAULTS: dict = {
    "width": 5.5,
    "panel_height": 1.7,
    "max_columns": 4,
    "font_size": 7,
    "dpi": 300,
    "marker_size": 8,
    "line_width": 1.2,
    "colormap": "tab10",
}

#: Axis labels of the measures (the notation of the paper).


def resolve_options(defaults: Mapping, given: Mapping | None, what: str) -> dict:
    """``defaults`` updated by ``given``; an unknown key is an error naming it."""
    given = dict(given or {})
    unknown = sorted(set(given) - set(defaults))
    if unknown:
        raise KeyError(f"unknown {what} key(s) {unknown}; known: {sorted(defaults)}")
    return {**defaults, **{k: v for k, v in given.items() if v is not None or defaults[k] is None}}


def resolve_style(style: Mapping | None) -> dict:
    return resolve_options(STYLE_DEFAULTS, style, "figure style")


def rc(style: Mapping) -> dict:
    """matplotlib rc parameters for ``style`` (used in ``matplotlib.rc_context``)."""
    size = float(style["font_size"])
    return {
        "font.size": size,
        "axes.titlesize": size + 1,
        "axes.labelsize": size,
        "xtick.labelsize": size - 1,
        "ytick.labelsize": size - 1,
        "legend.fontsize": size - 1,
        "lines.linewidth": float(style["line_width"]),
        "axes.spines.top": False,
        "axes.spines.right": False,
        "pdf.fonttype": 42,  # embed TrueType: editable text in the PDF
        "savefig.dpi": float(style["dpi"]),
    }


def grid_shape(panels: int, max_columns: int) -> tuple[int, int]:
    columns = max(1, min(panels, int(max_columns)))
    return math.ceil(panels / columns), columns


def new_figure(style: Mapping, panels: int, height_rows: float | None = None,
               columns: int | None = None, width_fraction: float = 1.0):
    """A constrained-layout figure of ``panels`` axes on a grid (rows x columns).

    The figure is ``width_fraction`` x the style's width wide and ``height_rows`` (default:
    the number of rows) x ``panel_height`` high. Returns (figure, list of ``panels`` axes);
    unused grid cells are removed.
    """
    rows, cols = grid_shape(panels, columns or style["max_columns"])
    height = float(style["panel_height"]) * (height_rows if height_rows is not None else rows)
    width = float(style["width"]) * float(width_fraction)
    figure = Figure(figsize=(width, height), layout="constrained")
    grid = figure.subplots(rows, cols, squeeze=False)
    axes = [ax for row in grid for ax in row]
    for ax in axes[panels:]:
        ax.remove()
    return figure, axes[:panels]


def colors(style: Mapping, count: int) -> list:
    """``count`` distinct colours from the style's colormap."""
    cmap = matplotlib.colormaps[style["colormap"]]
    if getattr(cmap, "N", 256) < 256:  # qualitative map: cycle through its colours
        return [cmap(i % cmap.N) for i in range(count)]
    return [cmap(x) for x in ([0.5] if count == 1 else [i / (count - 1) for i in range(count)])]


def placeholder(ax, message: str, style: Mapping) -> None:
    """Turn ``ax`` into a panel that says, in words, why it has nothing to draw (e.g. a
    model whose status is not ok)."""
    ax.set_axis_off()
    ax.text(0.5, 0.5, message, ha="center", va="center", wrap=True, transform=ax.transAxes,
            fontsize=style["font_size"], color="0.3")


def save_figure(figure: Figure, pdf: str | os.PathLike, png: str | os.PathLike, style: Mapping) -> None:
    """Write the figure as PDF and PNG, each atomically (temporary file, then rename)."""
    # fontTools logs every step of subsetting the fonts embedded in the PDF at INFO, and
    # warns that their creation dates are "very low": noise in each figure's log.
    logging.getLogger("fontTools").setLevel(logging.WARNING)
    logging.getLogger("fontTools.ttLib.tables._h_e_a_d").setLevel(logging.ERROR)
    with matplotlib.rc_context(rc(style)):
        write_atomic(pdf, lambda tmp: figure.savefig(tmp, format="pdf"))
        write_atomic(png, lambda tmp: figure.savefig(tmp, format="png", dpi=float(style["dpi"])))


def styled(plot: Callable[..., Figure]) -> Callable[..., Figure]:
    """Decorate a plotting function ``plot(*data, style=..., **settings)``: resolve the
    style over :data:`STYLE_DEFAULTS` and draw inside its ``rc_context``, so fonts and
    line widths apply to every artist the function creates."""

    @functools.wraps(plot)
    def wrapper(*args, style: Mapping | None = None, **kwargs) -> Figure:
        resolved = resolve_style(style)
        with matplotlib.rc_context(rc(resolved)):
            return plot(*args, style=resolved, **kwargs)

    return wrapper


@styled
def placeholder_figure(message: str, *, style: Mapping) -> Figure:
    """A one-panel figure holding only ``message`` (:func:`placeholder`)."""
    figure, axes = new_figure(style, 1)
    placeholder(axes[0], message, style)
    return figure
