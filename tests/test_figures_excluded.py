"""Figures leave out the models whose status is not ok (intraclass.figures.render_figure),
and the figures about one chosen model draw a placeholder when that model diverged."""

from __future__ import annotations

import io

import numpy as np
import pandas as pd
import pytest
from test_figure_rotation import rotation_study
from test_figures import FakeStore, synthetic_study

from intraclass.figures import FigureInputs, make_figure, render_figure
from intraclass.figures.common import SkippedStore, usable_inputs
from intraclass.figures.style import resolve_style
from intraclass.status import write_skipped_store

BAD = "m3"  # not an evolution model of the synthetic study
REASON = "training loss nan at epoch 1"


def png(figure) -> bytes:
    buffer = io.BytesIO()
    figure.savefig(buffer, format="png", dpi=40)
    return buffer.getvalue()


def with_failed_model(inputs: FigureInputs, model: str = BAD) -> FigureInputs:
    """``inputs`` plus a ``status`` column where ``model`` diverged, and its values made
    extreme: drawn anywhere, they would change the picture."""
    models = inputs.models.copy()
    models["status"] = np.where(models["model"] == model, "diverged", "ok")
    models["reason"] = np.where(models["model"] == model, REASON, None)
    numeric = [c for c in models.columns if c in ("test_acc", "gap", "c1", "c2", "c3", "c4", "sigma1")]
    models.loc[models["model"] == model, numeric] = 1e3
    measures = inputs.measures.copy()
    measures.loc[measures["model"] == model, "value"] = 1e6
    return FigureInputs(**{**vars(inputs), "models": models, "measures": measures})


def without(inputs: FigureInputs, model: str = BAD) -> FigureInputs:
    """``inputs`` as if ``model`` had never been in the study."""
    models = inputs.models[inputs.models["model"] != model].reset_index(drop=True)
    measures = inputs.measures[inputs.measures["model"] != model]
    return FigureInputs(**{**vars(inputs), "models": models, "measures": measures})


@pytest.mark.parametrize("fig", ["3", "4", "5", "6", "8", "11", "rotation"])
def test_a_failed_model_changes_no_figure(fig):
    study = rotation_study() if fig == "rotation" else synthetic_study()
    expected = render_figure(fig, without(study), {"dpi": 40})
    failed = render_figure(fig, with_failed_model(study), {"dpi": 40})
    if fig == "rotation":  # its first title counts the models left out: compare the lines
        assert failed.axes[0].get_title() == "end of training (1 left out: status not ok)"
        assert lines(failed) == lines(expected) and len(lines(failed)) == 3 + 3
    else:
        assert png(failed) == png(expected)


def lines(figure) -> list:
    return [(tuple(line.get_xdata()), tuple(line.get_ydata()), line.get_color())
            for ax in figure.axes for line in ax.get_lines()]


def test_usable_inputs_moves_failed_rows_and_drops_their_measures():
    study = with_failed_model(synthetic_study())
    usable = usable_inputs(study)
    assert BAD not in set(usable.models["model"]) and BAD not in set(usable.measures["model"])
    assert usable.excluded["model"].tolist() == [BAD] and usable.excluded["reason"].tolist() == [REASON]
    assert usable.models.index.tolist() == list(range(len(usable.models)))
    again = usable_inputs(usable)  # idempotent
    assert again.excluded["model"].tolist() == [BAD] and len(again.models) == len(usable.models)
    plain = usable_inputs(synthetic_study())  # no status column: every model is usable
    assert plain.excluded.empty and len(plain.models) == 12


def test_fig7_of_a_diverged_evolution_model_is_a_placeholder(tmp_path):
    study = with_failed_model(synthetic_study(), "m0")  # m0: the evolution model of the stores
    stores = [SkippedStore({"model_id": "m0", "status": "diverged", "reason": REASON})] * 2
    inputs = FigureInputs(**{**vars(study), "stores": stores, "checkpoints": ["final", "epoch1"]})
    figure = render_figure("7", inputs, {"dpi": 40})
    texts = [t.get_text() for ax in figure.axes for t in ax.texts]
    assert texts == [f"Figure 7: evolution model m0 has status diverged ({REASON}):\nno pre-activations "
                     "to draw. Choose a usable model with figures.fig7.model."]
    # unmeasurable: real stores, but the model's status (models.csv) is not ok
    study = with_failed_model(synthetic_study(), "m0")
    inputs = FigureInputs(**{**vars(study), "stores": [FakeStore(4, 0)], "checkpoints": ["final"]})
    texts = [t.get_text() for ax in render_figure("7", inputs).axes for t in ax.texts]
    assert len(texts) == 1 and "m0 has status diverged" in texts[0]


def test_make_figure_reads_skipped_stores_for_fig7(tmp_path):
    study = with_failed_model(synthetic_study(), "m0")
    study.models.to_csv(tmp_path / "models.csv", index=False)
    study.measures.to_csv(tmp_path / "measures.csv.gz", index=False)
    stores = [write_skipped_store(tmp_path / "activations" / "m0" / f"{c}.zarr", "diverged", REASON)
              for c in ("final", "epoch1")]
    make_figure("7", tmp_path / "models.csv", tmp_path / "measures.csv.gz", None, tmp_path / "fig7.pdf",
                tmp_path / "fig7.png", stores=stores, checkpoints=["final", "epoch1"], style={"dpi": 40})
    assert (tmp_path / "fig7.png").read_bytes().startswith(b"\x89PNG")
    assert (tmp_path / "fig7.pdf").stat().st_size > 1000


def test_rotation_panel_of_a_named_failed_model_is_a_placeholder():
    study = rotation_study(evolution=("m1", "m2"))
    failed = with_failed_model(study, "m2")
    figure = render_figure("rotation", failed, resolve_style({"dpi": 40}), {"models": ["m1", "m2"]})
    final_ax, m1_ax, m2_ax = figure.axes[:3]
    assert len(final_ax.get_lines()) == 3 and m1_ax.get_title() == "m1"
    assert not m2_ax.get_lines() and not m2_ax.axison
    assert [t.get_text() for t in m2_ax.texts] == [f"m2\nhas status diverged ({REASON}):\nno rotation curve"]
    # default: every usable model with epoch checkpoints, i.e. m1 only
    assert len(render_figure("rotation", failed, {"dpi": 40}).axes) == 1 + 1 + 1
    # a usable model without checkpoints is still an error
    with pytest.raises(ValueError, match=r"model\(s\) \['m0'\] have no epoch checkpoints"):
        render_figure("rotation", failed, {"dpi": 40}, {"models": ["m0"]})


def test_a_status_column_of_only_ok_models_changes_nothing():
    study = synthetic_study()
    models = study.models.assign(status="ok", reason=pd.NA)
    assert png(render_figure("8", FigureInputs(**{**vars(study), "models": models}))) == png(
        render_figure("8", study))
