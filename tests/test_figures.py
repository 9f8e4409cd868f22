"""Every figure renders (non-empty PDF + PNG) from a small synthetic results table, and the
data each figure selects is the right one."""

import itertools
from types import SimpleNamespace

import numpy as np
import pandas as pd
import pytest

from intraclass import figures, kendall
from intraclass.figures import FigureInputs, fig5, fig6, fig7, make_figure, render_figure
from intraclass.figures.style import resolve_style, save_figure

SUBCLASSES = 6  # 2 superclasses x 3 subclasses
LAYERS = {1.0: ["b1", "b2", "b3"], 1.5: ["b1", "b2", "b3", "b4", "b5"]}
EVOLUTION = ("m0", "m5")
EPOCHS = (1, 3)


def synthetic_study() -> FigureInputs:
    """12 models on lr x batch x (width, depth); tidy rows of every scope the figures read."""
    rng = np.random.default_rng(0)
    rows = []
    for lr, bs, (w, d) in itertools.product([0.01, 0.1], [100, 300], [(1.0, 1.0), (1.5, 1.0), (1.0, 1.5)]):
        rows.append(dict(model=f"m{len(rows)}", lr=lr, weight_decay=0.0, batch_size=bs, optimizer="sgd",
                         dropout=0.0, augment=True, width=w, depth=d, seed=0))
    models = pd.DataFrame(rows)
    models["train_acc"] = 1.0
    models["test_acc"] = rng.uniform(0.5, 0.9, len(models))
    models["gap"] = models["train_acc"] - models["test_acc"]
    models["epochs_run"] = 4
    tidy = []

    def add(model, checkpoint, measure, scope, k, value, layer=None, subclass=None, neuron=None):
        tidy.append(dict(model=model, checkpoint=checkpoint, measure=measure, scope=scope, k=k,
                         layer=layer, subclass=subclass, neuron=neuron, value=value))

    for i, m in models.iterrows():
        acc = m["test_acc"]
        checkpoints = ["final", *[f"epoch{e}" for e in EPOCHS]] if m["model"] in EVOLUTION else ["final"]
        for checkpoint in checkpoints:
            scale = 1.0 if checkpoint == "final" else int(checkpoint[5:]) / 4
            for j, measure in enumerate(kendall.INTRACLASS):
                add(m["model"], checkpoint, measure, "total", 5, scale * (acc + 0.05 * rng.normal()) + j)
        for j, measure in enumerate(kendall.INTRACLASS):
            for position, layer in enumerate(LAYERS[m["depth"]]):
                add(m["model"], "final", measure, "layer", 5, position * acc + j, layer=layer)
        for k in range(1, 6):
            add(m["model"], "final", "c1", "k_sweep", k, acc * k + rng.normal())
            add(m["model"], "final", "c3", "k_sweep", k, acc + rng.normal())
        for s in range(SUBCLASSES):
            add(m["model"], "final", "c1", "subclass", 1, acc + 0.1 * s)
            add(m["model"], "final", "c1", "top_neuron", 1, acc + 0.1 * s, layer="b2", subclass=s, neuron=s % 4)
        for measure in kendall.SHARPNESS[:2]:
            models.loc[i, measure] = acc * rng.uniform(0.5, 1.5)
    for measure in kendall.INTRACLASS:
        final = [r for r in tidy if r["scope"] == "total" and r["checkpoint"] == "final" and r["measure"] == measure]
        models[measure] = [r["value"] for r in final]
    measures = pd.DataFrame(tidy)
    curve = kendall.kendall_k_curve(models, measures)
    return FigureInputs(models=models, measures=measures, kendall_k=curve)


@pytest.fixture(scope="module")
def study():
    return synthetic_study()


class FakeStore:
    """The ActivationStore interface: layer_names, layers(names), fine, coarse, attrs."""

    def __init__(self, epoch, seed):
        rng = np.random.default_rng(seed)
        self.fine = np.repeat(np.arange(SUBCLASSES), 20)  # 120 samples
        self.coarse = self.fine // 3
        self.layer_names = ["b1", "b2"]
        self._layers = {name: rng.normal(size=(len(self.fine), 4)).astype(np.float32) for name in self.layer_names}
        self.attrs = {"model_id": "m0", "epoch": epoch}

    def layers(self, names):
        return [self._layers[n] for n in names]


def assert_written(tmp_path, figure, name):
    pdf, png = tmp_path / f"{name}.pdf", tmp_path / f"{name}.png"
    save_figure(figure, pdf, png, resolve_style({"dpi": 60}))
    assert pdf.read_bytes().startswith(b"%PDF") and pdf.stat().st_size > 1000
    assert png.read_bytes().startswith(b"\x89PNG") and png.stat().st_size > 1000


@pytest.mark.parametrize("fig", ["3", "4", "5", "6", "8", "11"])
def test_every_table_figure_renders(study, tmp_path, fig):
    figure = render_figure(fig, study, {"dpi": 60})
    assert figure.axes
    assert_written(tmp_path, figure, f"fig{fig}")


def test_fig7_renders_from_stores_and_picks_top_and_median(study, tmp_path):
    stores = [FakeStore(4, 0), FakeStore(1, 1), FakeStore(3, 2)]
    inputs = FigureInputs(models=study.models, measures=study.measures, stores=stores,
                          checkpoints=["final", "epoch1", "epoch3"])
    figure = render_figure("7", inputs, {"dpi": 60})
    assert_written(tmp_path, figure, "fig7")
    top = study.measures[(study.measures.model == "m0") & (study.measures.scope == "top_neuron")]
    panels = fig7.neuron_panels(stores, inputs.checkpoints, top)
    # selectivity grows with the subclass id: top = 5 (neuron 1); median of 6 sorted
    # descending = position 3 = subclass 2 (neuron 2); no names in the stores: label ids
    assert [p.label.split(",")[0] for p in panels] == [
        "most selective subclass: subclass 5 (vs. the rest of superclass 1)",
        "median subclass: subclass 2 (vs. the rest of superclass 0)"]
    assert [p.label.split("\n")[1] for p in panels] == [
        "its most selective neuron: layer 2 of 2, neuron 2 of 4",
        "its most selective neuron: layer 2 of 2, neuron 3 of 4"]
    assert panels[0].checkpoints == ["epoch 1", "epoch 3", "final (epoch 4)"]
    store = stores[1]  # epoch1 comes first after sorting
    values = store.layers(["b2"])[0][:, 1]
    np.testing.assert_array_equal(panels[0].inside[0], values[store.fine == 5])
    np.testing.assert_array_equal(panels[0].rest[0], values[(store.fine == 3) | (store.fine == 4)])


def test_fig7_plot_from_arrays(tmp_path):
    rng = np.random.default_rng(1)
    panel = fig7.NeuronPanel("top: rocket", ["epoch 1", "final"], [rng.normal(1, 1, 50)] * 2,
                             [rng.normal(size=200)] * 2)
    assert_written(tmp_path, fig7.plot_fig7([panel, panel], style={"dpi": 60}), "fig7_arrays")


def test_fig5_averages_models_of_one_depth(study):
    layer = study.measures[(study.measures.scope == "layer") & (study.measures.measure == "c3")]
    deep = set(study.models.loc[study.models.depth == 1.5, "model"])
    stats = fig5.layer_means(layer[layer.model.isin(deep)])
    assert stats["layer"].tolist() == LAYERS[1.5]
    mean_acc = study.models.loc[study.models.depth == 1.5, "test_acc"].mean()
    # value = position * acc + 2 for c3: the mean over models is position * mean(acc) + 2
    np.testing.assert_allclose(stats["mean"], np.arange(5) * mean_acc + 2)
    assert (stats["models"] == len(deep)).all()
    assert fig5.pick_depth(study.models, None) == 1.0  # 8 models of depth 1, 4 of 1.5
    with pytest.raises(ValueError, match="no model of depth 2"):
        fig5.pick_depth(study.models, 2)


def test_fig6_places_final_at_epochs_run(study):
    total = study.measures[study.measures.scope == "total"]
    table = fig6.evolution_table(total[total.model.isin(EVOLUTION)], study.models)
    assert sorted(table["epoch"].unique()) == [1.0, 3.0, 4.0]
    assert set(table["model"]) == set(EVOLUTION)
    with pytest.raises(ValueError, match=r"model\(s\) \['m1'\] have no epoch checkpoints"):
        render_figure("6", study, settings={"models": ["m1"]})


def test_fig6_epoch_ticks_are_integers_and_axes_labelled():
    """Two epochs, 1 and 2: matplotlib's default ticks would be 1.0, 1.2, ..., 2.0."""
    evolution = pd.DataFrame(dict(model=["a", "a", "b", "b"] * 2, measure=["c1"] * 4 + ["c4"] * 4,
                                  k=[30] * 4 + [1] * 4, epoch=[1.0, 2.0] * 4,
                                  value=[0.1, 0.2, 0.15, 0.3] * 2, test_acc=[0.8, 0.8, 0.7, 0.7] * 2))
    figure = fig6.plot_fig6(evolution, ["c1", "c4"], style={"dpi": 60})
    for ax in figure.axes:
        low, high = ax.get_xlim()
        ticks = [t for t in ax.get_xticks() if low <= t <= high]
        assert ticks == [1.0, 2.0]
        assert ax.get_xlabel() == "epoch"
    assert [ax.get_ylabel() for ax in figure.axes] == ["value (top 30 neurons)", "value (top 1 layer)"]


def test_bad_settings_and_style_are_named(study):
    with pytest.raises(KeyError, match=r"unknown figure style key\(s\) \['dpis'\]"):
        render_figure("8", study, {"dpis": 10})
    with pytest.raises(KeyError, match="unknown fig3 setting"):
        render_figure("3", study, settings={"colour_by": "depth"})
    with pytest.raises(ValueError, match="unknown figure '9'"):
        render_figure("9", study)
    with pytest.raises(ValueError, match="figure 11: no per-subclass c1 values at k=3"):
        render_figure("11", study, settings={"k": 3})


def test_make_figure_from_files_with_a_real_store(study, tmp_path):
    from intraclass.activations import StoreWriter

    models_csv, measures_csv, curve_csv = tmp_path / "models.csv", tmp_path / "measures.csv.gz", tmp_path / "k.csv"
    study.models.to_csv(models_csv, index=False)
    study.measures.to_csv(measures_csv, index=False)
    study.kendall_k.to_csv(curve_csv, index=False)
    out = tmp_path / "figures"
    make_figure("3", models_csv, measures_csv, curve_csv, out / "fig3.pdf", out / "fig3.png",
                style={"dpi": 50}, settings={"color_by": "depth"})
    assert (out / "fig3.png").stat().st_size > 1000 and (out / "fig3.pdf").stat().st_size > 1000
    fake = FakeStore(4, 0)
    paths = []
    for name, epoch in (("final", 4), ("epoch1", 1)):
        path = tmp_path / "acts" / f"{name}.zarr"
        with StoreWriter(path, [("b1", 4), ("b2", 4)], len(fake.fine), fine=fake.fine, coarse=fake.coarse,
                         attrs={"model_id": "m0", "checkpoint": name, "epoch": epoch}) as writer:
            writer.append(fake.layers(["b1", "b2"]))
            writer.close()
        paths.append(path)
    make_figure("7", models_csv, measures_csv, curve_csv, out / "fig7.pdf", out / "fig7.png",
                stores=paths, style={"dpi": 50})
    assert (out / "fig7.png").stat().st_size > 1000
    assert sorted(p.name for p in out.iterdir()) == ["fig3.pdf", "fig3.png", "fig7.pdf", "fig7.png"]


def test_registry_covers_the_papers_figures():
    assert list(figures.FIGURES) == ["3", "4", "5", "6", "7", "8", "11", "rotation"]


def test_report_captions_render_for_every_figure_and_table():
    """Each caption Snakemake's report uses exists and renders (jinja, then docutils)."""
    from pathlib import Path

    import jinja2
    from docutils.core import publish_parts

    report = Path(__file__).resolve().parents[1] / "workflow" / "report"
    config = {"studies": {"default": {"dataset": "fashion_mnist_small", "labels": "coarse", "arch": {"name": "vgg"}}}}
    snakemake = SimpleNamespace(config=config, wildcards=SimpleNamespace(study="default"),
                                params=SimpleNamespace(generalization="test_acc", k={"c1": 30, "c3": 30}))
    names = [f"fig{fig}" for fig in figures.FIGURES] + ["kendall", "workflow"]
    for name in names:
        text = jinja2.Environment(undefined=jinja2.StrictUndefined).from_string(
            (report / f"{name}.rst").read_text()).render(snakemake=snakemake)
        html = publish_parts(text, writer="html", settings_overrides={"halt_level": 2})["body"]
        assert "default" in html or name == "workflow", name
        assert "System Message" not in html, name


def test_fig7_reads_subclass_names_from_the_store_attributes():
    assert fig7.fine_names(SimpleNamespace(attrs={"fine_names": ["rocket", "ray"]})) == ["rocket", "ray"]
    assert fig7.fine_names(SimpleNamespace(attrs={"coarse_names": ["fish"]}), "coarse_names") == ["fish"]
    assert fig7.fine_names(SimpleNamespace(attrs={})) is None  # no names: label ids instead


FINE_NAMES = ["T-shirt/top", "Pullover", "Coat", "Sandal", "Sneaker", "Ankle boot"]


def test_fig7_labels_rows_by_subclass_name_and_place_in_the_network(study):
    """Rows are headed by the subclass and superclass names and "layer L of N (stage S),
    neuron n of W", never by a module path; every axis is labelled."""
    stores = [FakeStore(4, 0), FakeStore(1, 1)]
    for store in stores:
        store.layer_names = ["stages.0.0.bn", "stages.3.1.bn"]  # the module paths of a real model
        store._layers = dict(zip(store.layer_names, store._layers.values()))
        store.attrs.update(fine_names=FINE_NAMES, coarse_names=["tops", "footwear"])
    measures = study.measures.copy()
    measures.loc[measures.scope == "top_neuron", "layer"] = "1"  # index in forward order, as written
    inputs = FigureInputs(models=study.models, measures=measures, stores=stores,
                          checkpoints=["final", "epoch1"])
    figure = render_figure("7", inputs, {"dpi": 60})
    headings = [sub.get_suptitle() for sub in figure.subfigs]
    selectivity = measures[(measures.model == "m0") & (measures.scope == "top_neuron")].set_index("subclass")["value"]
    assert headings == [  # subclass 5 (neuron 1) and subclass 2 (neuron 2), as in the test above
        f"most selective subclass: Ankle boot (vs. the rest of footwear), selectivity {selectivity[5]:.2f}\n"
        "its most selective neuron: layer 2 of 2 (stage 4), neuron 2 of 4",
        f"median subclass: Coat (vs. the rest of tops), selectivity {selectivity[2]:.2f}\n"
        "its most selective neuron: layer 2 of 2 (stage 4), neuron 3 of 4"]
    assert not any("stages." in h or ".bn" in h for h in headings)
    axes = figure.axes
    assert len(axes) == 4
    assert all(ax.get_xlabel() == "pre-activation" for ax in axes)
    assert [ax.get_ylabel() for ax in axes] == ["density", "", "density", ""]
    assert [ax.get_title() for ax in axes] == ["epoch 1", "final (epoch 4)"] * 2


def test_fig7_stage_of_a_real_models_layers():
    from intraclass.models import build_model, measured_sites

    for arch, per_stage in (("vgg", 2), ("resnet", 4)):
        names = [site.name for site in measured_sites(build_model(arch, 3, 1, base_width=4))]
        assert [fig7.stage_of(n) for n in names] == [s for s in (1, 2, 3, 4) for _ in range(per_stage)]
    assert fig7.stage_of("b2") is None
    assert fig7.neuron_place("stages.1.0.bn", ["stages.0.0.bn", "stages.1.0.bn"], 0, 8) == \
        "layer 2 of 2 (stage 2), neuron 1 of 8"


def test_fig5_k_setting_applies_to_neuron_level_measures_only(study):
    """As the measures stage writes them, c2/c4 layer rows have no k (a layer's own value);
    choosing the k of c1/c3's per-layer top-k must not drop them."""
    measures = study.measures.copy()
    layer_level = (measures.scope == "layer") & measures.measure.isin(["c2", "c4"])
    measures.loc[layer_level, "k"] = np.nan
    inputs = FigureInputs(**{**vars(study), "measures": measures})
    figure = render_figure("5", inputs, {"dpi": 60}, {"k": 5})
    assert [ax.get_title() for ax in figure.axes if ax.get_title()] == ["$c_1$", "$c_2$", "$c_3$", "$c_4$"]


def test_fig3_oriented_tau_error_bars_bound_markers_and_exclusions(study):
    from matplotlib.collections import LineCollection

    from intraclass.figures import fig3

    models = study.models.copy()
    models["sigma1"] = -models["test_acc"]  # sharper = worse: oriented tau is +1
    models["sigma1_at_bound"] = [i % 3 == 0 for i in range(len(models))]
    models["status"] = ["ok"] * (len(models) - 1) + ["failed"]
    inputs = FigureInputs(**{**vars(study), "models": models, "n_test": 2000})
    figure = render_figure("3", inputs, {"dpi": 60}, {"measures": ["c1", "sigma1"]})
    c1_ax, sigma_ax = figure.axes[:2]
    assert sigma_ax.get_title() == "$\\tau$ = 1.00 (negated)" and "negated" not in c1_ax.get_title()
    # one error bar per usable model, of half-length 1 SE in percent
    bars = [c for c in sigma_ax.collections if isinstance(c, LineCollection)]
    segments = np.concatenate([c.get_segments() for c in bars])
    usable = models.iloc[:-1]
    assert len(segments) == len(usable)
    half = np.sort([abs(s[1, 1] - s[0, 1]) / 2 for s in segments])
    expected = np.sort(100 * np.sqrt(usable["test_acc"] * (1 - usable["test_acc"]) / 2000))
    np.testing.assert_allclose(half, expected, rtol=1e-9)
    # the flagged points use the bound marker, the excluded model is absent, the legend says so
    points = [c for c in sigma_ax.collections if not isinstance(c, LineCollection)]
    drawn = sum(len(c.get_offsets()) for c in points)
    assert drawn == len(usable)
    flagged = sum(len(c.get_offsets()) for c in points if c.get_offsets().shape[0] and
                  c.get_paths()[0].vertices.shape != points[0].get_paths()[0].vertices.shape)
    assert flagged == int(usable["sigma1_at_bound"].sum())
    legend_texts = [t.get_text() for legend in figure.legends for t in legend.get_texts()]
    assert fig3.BOUND_LABEL in legend_texts
    # without n_test: no bars
    plain = render_figure("3", FigureInputs(**{**vars(study), "models": models}), {"dpi": 60}, {"measures": ["c1"]})
    assert not [c for c in plain.axes[0].collections if isinstance(c, LineCollection)]


def test_fig4_draws_bootstrap_bands_when_the_curve_has_intervals(study):
    from matplotlib.collections import PolyCollection

    curve = study.kendall_k.copy()
    plain = render_figure("4", FigureInputs(**{**vars(study), "kendall_k": curve}), {"dpi": 60})
    assert not [c for c in plain.axes[0].collections if isinstance(c, PolyCollection)]
    curve["total_lo"], curve["total_hi"] = curve["total"] - 0.1, curve["total"] + 0.1
    banded = render_figure("4", FigureInputs(**{**vars(study), "kendall_k": curve}), {"dpi": 60})
    bands = [c for c in banded.axes[0].collections if isinstance(c, PolyCollection)]
    assert len(bands) == curve["measure"].nunique()
    vertices = bands[0].get_paths()[0].vertices
    assert vertices[:, 1].max() == pytest.approx(curve[curve.measure == "c1"]["total_hi"].max())
