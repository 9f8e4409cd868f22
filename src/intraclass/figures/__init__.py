"""Every figure of the paper, from the collected tables of one study.

One module per figure (``fig3`` ... ``fig11``), each with a pure ``plot_figN`` over
DataFrames/arrays (what the tests draw from synthetic tables), a ``render`` that picks
its data from :class:`FigureInputs`, and its ``SETTINGS`` defaults (documented in the
module; ``figures.figN`` of the config overrides them). The shared style is
:mod:`intraclass.figures.style`. :func:`make_figure` is the ``figure`` stage.

Every figure leaves out the models whose ``status`` in ``models.csv`` is not ``ok``
(:func:`render_figure`, through :func:`intraclass.figures.common.usable_inputs`). A figure
about one chosen model whose status is not ok (Fig. 7's evolution model, a rotation panel
named in ``figures.figrotation.models``) draws a placeholder panel that gives its status
and reason: the model is fixed when the workflow is planned, before training, so no other
model's activations exist to fall back on.
"""

from __future__ import annotations

import importlib
import logging
import os
from collections.abc import Mapping, Sequence

from matplotlib.figure import Figure

from intraclass.figures.common import FigureInputs, SkippedStore, usable_inputs
from intraclass.figures.style import STYLE_DEFAULTS, resolve_style, save_figure
from intraclass.names import FIGURE_IDS

log = logging.getLogger(__name__)


def figure_module(fig: str):
    """The module of figure ``fig`` (names.FIGURE_IDS): ``fig<id>`` for the paper's
    numbered figures, ``rotation`` for the layer rotation curves (ours)."""
    return importlib.import_module(f"intraclass.figures.{'fig' + fig if fig.isdigit() else fig}")


FIGURES = {fig: figure_module(fig) for fig in FIGURE_IDS}
#: What each figure reads besides models.csv.
NEEDS_MEASURES = {"5", "6", "7", "11", "rotation"}

__all__ = ["FIGURES", "STYLE_DEFAULTS", "FigureInputs", "make_figure", "render_figure"]


def render_figure(fig: str | int, inputs: FigureInputs, style: Mapping | None = None,
                  settings: Mapping | None = None) -> Figure:
    """Draw figure ``fig`` (3, 4, 5, 6, 7, 8, 11 or rotation) from ``inputs``, leaving out
    the models whose status is not ok."""
    fig = str(fig)
    if fig not in FIGURES:
        raise ValueError(f"unknown figure {fig!r}; figures: {list(FIGURES)}")
    return FIGURES[fig].render(usable_inputs(inputs), resolve_style(style), settings)


def open_figure_store(path: str | os.PathLike):
    """The activation store at ``path``, or a :class:`SkippedStore` when its model's
    extract job wrote a skipped store (status not ok)."""
    from intraclass.activations import open_store
    from intraclass.status import skipped_store

    skipped = skipped_store(path)
    if skipped is None:
        return open_store(path)
    model = os.path.basename(os.path.dirname(os.fspath(path).rstrip("/")))
    return SkippedStore({"model_id": model, "status": skipped[0], "reason": skipped[1]})


def make_figure(
    fig: str | int,
    models_csv: str | os.PathLike,
    measures_csv: str | os.PathLike | None,
    kendall_k_csv: str | os.PathLike | None,
    out_pdf: str | os.PathLike,
    out_png: str | os.PathLike,
    stores: Sequence[str | os.PathLike] = (),
    checkpoints: Sequence[str] = (),
    style: Mapping | None = None,
    settings: Mapping | None = None,
    generalization: str = "test_acc",
    correct_npz: str | os.PathLike | None = None,
) -> None:
    """The ``figure`` stage: read what figure ``fig`` needs, draw it, write PDF and PNG
    (each atomically). ``stores`` (Fig. 7) are activation store paths aligned with
    ``checkpoints``; when ``checkpoints`` is empty their names are the store file stems.
    ``correct_npz`` (Fig. 3): ``test_correct.npz``, whose width is the number of test images."""
    from intraclass.tables import read_table

    fig = str(fig)
    if fig not in FIGURES:
        raise ValueError(f"unknown figure {fig!r}; figures: {list(FIGURES)}")
    resolved = resolve_style(style)  # fail on a bad style key before reading anything
    inputs = FigureInputs(models=read_table(models_csv), generalization=generalization)
    if fig in NEEDS_MEASURES and measures_csv is not None:
        inputs.measures = read_table(measures_csv)
    if fig == "4" and kendall_k_csv is not None:
        inputs.kendall_k = read_table(kendall_k_csv)
    if fig == "3" and correct_npz:
        import numpy as np

        with np.load(correct_npz, allow_pickle=False) as data:
            inputs.n_test = int(data["correct"].shape[1])
    if fig == "7":
        inputs.stores = [open_figure_store(p) for p in stores]
        inputs.checkpoints = list(checkpoints) or [os.path.splitext(os.path.basename(os.fspath(p).rstrip("/")))[0]
                                                   for p in stores]
    usable = usable_inputs(inputs)
    log.info("drawing figure %s from %d models", fig, len(usable.models))
    for _, row in usable.excluded.iterrows():
        log.info("left out: model %s (status %s: %s)", row["model"], row.get("status"), row.get("reason"))
    figure = render_figure(fig, inputs, resolved, settings)
    save_figure(figure, out_pdf, out_png, resolved)
    log.info("wrote %s and %s", out_pdf, out_png)
