"""Every text a figure shows is plain text or mathtext: no LaTeX backslash outside $...$
(matplotlib prints text-mode LaTeX such as ``clust.\\ AMI`` as it is)."""

from __future__ import annotations

import io
import re

import pandas as pd
import pytest
from matplotlib.text import Text
from test_figures import FakeStore, synthetic_study

from intraclass.figures import FigureInputs, render_figure
from intraclass.names import LAYERWISE, MEASURE_LATEX, MEASURE_MATHTEXT, MEASURES

RELATED = ("c0", "clusterability", "purity", "bimodality")


def outside_math(text: str) -> str:
    """``text`` without its ``$...$`` parts (mathtext, where backslashes are commands)."""
    return re.sub(r"\$[^$]*\$", "", text)


def shown_texts(figure) -> list[str]:
    figure.savefig(io.BytesIO(), format="png", dpi=30)  # lays out legends, ticks and mathtext
    return [t.get_text() for t in figure.findobj(Text) if t.get_text()]


def with_related_measures(inputs: FigureInputs) -> FigureInputs:
    """The synthetic study plus the related-work measures (models.csv columns and, for the
    layer-wise ones, layer rows), whose LaTeX labels are text mode."""
    models, measures = inputs.models.copy(), inputs.measures.copy()
    for i, name in enumerate(RELATED):
        models[name] = models["test_acc"] * (i + 1)
        if name in LAYERWISE:
            layer = measures[(measures["measure"] == "c3") & (measures["scope"] == "layer")].assign(measure=name)
            measures = pd.concat([measures, layer], ignore_index=True)
    return FigureInputs(**{**vars(inputs), "models": models, "measures": measures})


def test_matplotlib_labels_are_mathtext_or_plain_text():
    assert set(MEASURE_MATHTEXT) == set(MEASURES)
    for name, label in MEASURE_MATHTEXT.items():
        assert "\\" not in outside_math(label), (name, label)
        if "\\" not in MEASURE_LATEX[name] or MEASURE_LATEX[name].startswith("$"):
            continue
        assert label != MEASURE_LATEX[name]  # a text-mode LaTeX label is not used for plots
    assert MEASURE_MATHTEXT["c1"] == "$c_1$" and MEASURE_MATHTEXT["clusterability"] == "clust. AMI"


@pytest.mark.parametrize("fig", ["3", "4", "5", "6", "7", "8", "11"])
def test_no_figure_shows_a_backslash_outside_math(fig):
    study = with_related_measures(synthetic_study())
    settings = {"measures": [m for m in MEASURES if m in study.models.columns]} if fig == "3" else None
    if fig == "5":
        settings = {"measures": ["c1", "c3", *[m for m in RELATED if m in LAYERWISE]]}
    if fig == "7":
        study.stores, study.checkpoints = [FakeStore(4, 0), FakeStore(1, 1)], ["final", "epoch1"]
    texts = shown_texts(render_figure(fig, study, {"dpi": 30}, settings))
    assert texts
    bad = [t for t in texts if "\\" in outside_math(t)]
    assert not bad, f"figure {fig} shows {bad}"
    if fig in ("3", "5"):  # the related measures are there, under their unicode labels
        assert "clust. AMI" in texts
