"""The layer rotation figure (intraclass.figures.rotation) from synthetic tidy rows."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from matplotlib.colors import to_rgba

from intraclass.figures import FigureInputs, make_figure, render_figure
from intraclass.figures import rotation as fig


def rotation_study(evolution=("m1",), epochs=(1, 3)) -> FigureInputs:
    """4 models of 3 or 4 layers; rotation grows with the test accuracy and over epochs."""
    accuracy = {"m0": 0.6, "m1": 0.7, "m2": 0.8, "m3": 0.9}
    models = pd.DataFrame({"model": list(accuracy), "test_acc": list(accuracy.values()),
                           "train_acc": 1.0, "epochs_run": 5, "depth": [1, 1, 1.5, 1.5]})
    models["gap"] = models["train_acc"] - models["test_acc"]
    tidy = []
    for model, acc in accuracy.items():
        layers = 3 if model in ("m0", "m1") else 4
        checkpoints = [("final", 1.0)] + ([(f"epoch{e}", e / 5) for e in epochs] if model in evolution else [])
        for checkpoint, scale in checkpoints:
            for layer in range(layers):
                tidy.append(dict(model=model, checkpoint=checkpoint, measure="rotation", scope="layer",
                                 k=np.nan, layer=layer, subclass=np.nan, neuron=np.nan,
                                 value=scale * acc * (1 + 0.1 * layer)))
            tidy.append(dict(model=model, checkpoint=checkpoint, measure="rotation", scope="total",
                             k=np.nan, layer=np.nan, subclass=np.nan, neuron=np.nan, value=scale * acc))
    tidy.append(dict(model="m0", checkpoint="final", measure="c4", scope="layer", k=1, layer=0,
                     subclass=np.nan, neuron=np.nan, value=9.0))  # another measure: not drawn
    return FigureInputs(models=models, measures=pd.DataFrame(tidy))


def test_curves_place_final_at_epochs_run_and_layers_one_based():
    inputs = rotation_study()
    curves = fig.rotation_curves(inputs.measures[inputs.measures.scope == "layer"].query("measure == 'rotation'"),
                                 inputs.models)
    m1 = curves[curves.model == "m1"]
    assert sorted(m1.epoch.unique()) == [1.0, 3.0, 5.0]
    assert m1[m1.checkpoint == "final"].layer.tolist() == [1, 2, 3]


def test_final_panel_has_one_line_per_model_coloured_by_accuracy():
    inputs = rotation_study()
    figure = render_figure("rotation", inputs, {"dpi": 60})
    final_ax, evolution_ax = figure.axes[0], figure.axes[1]  # then the colour bar
    lines = final_ax.get_lines()
    assert len(lines) == 4 and [len(line.get_xdata()) for line in lines] == [3, 3, 4, 4]
    # the colour follows the test accuracy: viridis goes from dark (low) to light (high)
    brightness = [sum(to_rgba(line.get_color())[:3]) for line in lines]  # m0 .. m3
    assert brightness == sorted(brightness)
    assert evolution_ax.get_title() == "m1" and len(evolution_ax.get_lines()) == 3  # epochs 1, 3, final
    assert [t.get_text() for t in evolution_ax.get_legend().get_texts()] == ["epoch 1", "epoch 3", "epoch 5"]
    assert any("test accuracy" in ax.get_ylabel() for ax in figure.axes[2:])  # the colour bar


def test_settings_choose_evolution_panels_and_reject_unknown_models():
    inputs = rotation_study(evolution=("m1", "m2"))
    assert len(render_figure("rotation", inputs, {"dpi": 60}).axes) == 1 + 2 + 1
    assert len(render_figure("rotation", inputs, {"dpi": 60}, {"models": []}).axes) == 1 + 1
    with pytest.raises(ValueError, match=r"model\(s\) \['m0'\] have no epoch checkpoints"):
        render_figure("rotation", inputs, {"dpi": 60}, {"models": ["m0"]})
    with pytest.raises(KeyError, match="unknown figrotation setting"):
        render_figure("rotation", inputs, {"dpi": 60}, {"model": []})


def test_a_study_without_rotation_rows_gets_a_clear_error():
    inputs = rotation_study()
    inputs.measures = inputs.measures[inputs.measures.measure != "rotation"]
    with pytest.raises(ValueError, match="no layer rows of 'rotation'"):
        render_figure("rotation", inputs, {"dpi": 60})


def test_make_figure_writes_pdf_and_png(tmp_path):
    inputs = rotation_study()
    inputs.models.to_csv(tmp_path / "models.csv", index=False)
    inputs.measures.to_csv(tmp_path / "measures.csv.gz", index=False)
    make_figure("rotation", tmp_path / "models.csv", tmp_path / "measures.csv.gz", None,
                tmp_path / "figrotation.pdf", tmp_path / "figrotation.png", style={"dpi": 60},
                generalization="gap")
    assert (tmp_path / "figrotation.pdf").read_bytes().startswith(b"%PDF")
    assert (tmp_path / "figrotation.png").read_bytes().startswith(b"\x89PNG")
