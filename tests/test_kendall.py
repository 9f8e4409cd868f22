"""Granulated Kendall coefficient (docs/criteria.md; Jiang et al. 2020)."""

import itertools
import math
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from scipy.stats import kendalltau

from intraclass import kendall
from intraclass.kendall import AXES, AXIS_COLUMNS

# The paper's grid (appendix A.1): coupled pairs, 192 configurations.
LR_WD = [(0.01, 0.0), (0.32, 0.0), (0.1, 0.0), (0.1, 4e-5)]
DROPOUT_AUG = [(0.0, True), (0.0, False), (0.2, False), (0.4, False)]
WIDTH_DEPTH = [(1.0, 1.0), (1.5, 1.0), (1.0, 1.5)]


def paper_grid(seeds=(0,)) -> pd.DataFrame:
    rows = []
    for (lr, wd), bs, opt, (do, aug), (w, d), seed in itertools.product(
        LR_WD, [100, 300], ["sgd", "adam"], DROPOUT_AUG, WIDTH_DEPTH, seeds
    ):
        rows.append(dict(model=f"m{len(rows)}", lr=lr, weight_decay=wd, batch_size=bs, optimizer=opt,
                         dropout=do, augment=aug, width=w, depth=d, seed=seed))
    return pd.DataFrame(rows)


def scipy_granulated(models: pd.DataFrame, measure: str, axes=AXES) -> dict[str, float]:
    """Independent computation: explicit grouping by tuples, scipy's tau per group."""
    keys = [AXIS_COLUMNS[a] for a in axes] + ["seed"]
    psi = {}
    for axis in axes:
        others = [c for c in keys if c != AXIS_COLUMNS[axis]]
        groups: dict[tuple, list[int]] = {}
        for i, row in models.iterrows():
            groups.setdefault(tuple(row[c] for c in others), []).append(i)
        taus = [kendalltau(models.loc[idx, measure], models.loc[idx, "test_acc"]).statistic
                for idx in groups.values() if len(idx) >= 2]
        psi[axis] = float(np.mean(taus)) if taus else math.nan
    present = [v for v in psi.values() if not math.isnan(v)]
    psi["total"] = float(np.mean(present))
    return psi


def test_tau_a_matches_scipy_without_ties_and_reference_loop():
    rng = np.random.default_rng(0)
    for n in (2, 3, 7, 30):
        mu, g = rng.normal(size=n), rng.normal(size=n)
        ours = kendall.tau_a_columns(mu, g)[0]
        assert ours == pytest.approx(kendalltau(mu, g).statistic, abs=1e-12)
        assert ours == pytest.approx(kendall.tau_a_reference(mu, g), abs=1e-12)


def test_tau_a_with_ties_counts_tied_pairs_as_zero():
    # mu ties models 0 and 1. Ordered pairs: 12; the tied pair (both orders) gives 0, the
    # other 10 are concordant -> tau-a = 10/12 = 5/6. scipy's tau-b divides by
    # sqrt((n0 - n1)(n0 - n2)) = sqrt(5 * 6) over unordered pairs: 5/sqrt(30) = 0.913.
    mu, g = [1.0, 1.0, 2.0, 3.0], [1.0, 2.0, 3.0, 4.0]
    assert kendall.tau_a_columns(mu, g)[0] == pytest.approx(5 / 6)
    assert kendall.tau_a_reference(mu, g) == pytest.approx(5 / 6)
    assert kendalltau(mu, g).statistic == pytest.approx(5 / math.sqrt(30))
    # ties in both: a constant measure ranks nothing
    assert kendall.tau_a_columns([2.0, 2.0, 2.0], [1.0, 2.0, 3.0])[0] == 0.0


def test_tau_a_columns_with_nan_drops_models_per_column():
    rng = np.random.default_rng(1)
    values = rng.normal(size=(9, 4)).round(1)  # rounding makes ties
    values[[0, 3], 1] = np.nan
    values[:, 2] = np.nan
    values[1:, 3] = np.nan  # one model left: not enough
    g = rng.normal(size=9).round(1)
    got = kendall.tau_a_columns(values, g)
    for col in range(2):
        keep = ~np.isnan(values[:, col])
        assert got[col] == pytest.approx(kendall.tau_a_reference(values[keep, col], g[keep]))
    assert np.isnan(got[2]) and np.isnan(got[3])


def test_granulated_matches_scipy_on_paper_grid_without_ties():
    models = paper_grid(seeds=(0, 1))
    rng = np.random.default_rng(2)
    models["test_acc"] = rng.uniform(0.3, 0.9, len(models))
    models["c3"] = models["test_acc"] + rng.normal(scale=0.1, size=len(models))
    got = kendall.granulated_kendall(models, "c3")
    expected = scipy_granulated(models, "c3")
    for axis, value in expected.items():
        assert got[axis] == pytest.approx(value, abs=1e-12), axis
    # a noisy copy of the target ranks well but not perfectly
    assert 0.3 < got["total"] < 1.0


def test_coupled_grid_groups_each_axis_by_all_other_hyperparameters():
    # lr and wd come in pairs: varying lr at wd=0 gives groups of 3 models; the only lr at
    # wd=4e-5 forms singletons (skipped). Varying wd is possible only at lr=0.1 (pairs).
    groups = kendall.axis_groups(paper_grid())
    assert {len(g) for g in groups["learning_rate"]} == {3}
    assert len(groups["learning_rate"]) == 192 // 4
    assert {len(g) for g in groups["weight_decay"]} == {2}
    assert len(groups["weight_decay"]) == 192 // 4
    # dropout varies at augment off (3 values); augmentation varies only at dropout 0
    assert {len(g) for g in groups["dropout"]} == {3}
    assert {len(g) for g in groups["augmentation"]} == {2}
    for axis in ("batch_size", "optimizer"):
        assert {len(g) for g in groups[axis]} == {2} and len(groups[axis]) == 96
    grid = paper_grid()
    for members in groups["width"]:  # members really differ only in width
        same = grid.loc[members].drop(columns=["model", "width"]).nunique()
        assert (same == 1).all()


def hand_grid() -> pd.DataFrame:
    """Six models: lr in {0.01, 0.1, 0.32} x batch size in {100, 300}, the rest constant."""
    base = dict(weight_decay=0.0, optimizer="sgd", dropout=0.0, augment=False, width=1.0, depth=1.0, seed=0)
    rows = [  # name, lr, batch, test_acc, measure
        ("A", 0.01, 100, 0.50, 1.0),
        ("B", 0.10, 100, 0.60, 3.0),
        ("C", 0.32, 100, 0.70, 2.0),
        ("D", 0.01, 300, 0.40, 3.0),
        ("E", 0.10, 300, 0.45, 2.0),
        ("F", 0.32, 300, 0.55, 2.0),
    ]
    return pd.DataFrame([dict(model=m, lr=lr, batch_size=bs, test_acc=g, c1=mu, **base)
                         for m, lr, bs, g, mu in rows])


def test_hand_made_grid_known_psi():
    # learning rate, groups by batch size:
    #   bs=100: A<B<C in accuracy; measure 1, 3, 2: (A,B) +1, (A,C) +1, (B,C) -1 -> 1/3
    #   bs=300: D<E<F in accuracy; measure 3, 2, 2: (D,E) -1, (D,F) -1, (E,F) tie 0 -> -2/3
    #   psi_lr = (1/3 - 2/3) / 2 = -1/6
    # batch size, groups by learning rate (accuracy of bs=100 is higher in each):
    #   lr=0.01: A(.50, 1) vs D(.40, 3) -> -1; lr=0.1: B(.60, 3) vs E(.45, 2) -> +1;
    #   lr=0.32: C(.70, 2) vs F(.55, 2) -> tie 0;  psi_bs = 0
    # weight decay never varies: no group -> missing; total = mean(-1/6, 0) = -1/12
    row = kendall.granulated_kendall(hand_grid(), "c1", axes=("learning_rate", "batch_size", "weight_decay"))
    assert row["learning_rate"] == pytest.approx(-1 / 6)
    assert row["batch_size"] == pytest.approx(0.0)
    assert math.isnan(row["weight_decay"])
    assert row["total"] == pytest.approx(-1 / 12)


def test_gap_generalization_ranks_minus_the_gap():
    models = hand_grid()
    models["train_acc"] = 1.0  # gap = 1 - test_acc: -gap ranks exactly like test_acc
    by_acc = kendall.granulated_kendall(models, "c1", "test_acc", axes=("learning_rate", "batch_size"))
    by_gap = kendall.granulated_kendall(models, "c1", "gap", axes=("learning_rate", "batch_size"))
    pd.testing.assert_series_equal(by_acc, by_gap)
    models["train_acc"] = models["test_acc"] * 2  # gap = test_acc: ranks reversed
    flipped = kendall.granulated_kendall(models, "c1", "gap", axes=("learning_rate", "batch_size"))
    assert flipped["learning_rate"] == pytest.approx(1 / 6)


def test_table_with_missing_axes_and_measures_does_not_crash():
    models = hand_grid()
    models["c3"] = models["test_acc"]  # perfect: 1 wherever defined
    models["sigma1"] = np.nan  # sharpness failed everywhere: not a row
    table = kendall.kendall_table(models)
    assert list(table.index) == ["c1", "c3"]
    assert list(table.columns) == [*AXES, "total"]
    missing = [a for a in AXES if a not in ("learning_rate", "batch_size")]
    assert table.loc[:, missing].isna().all().all()
    assert table.loc["c3", "learning_rate"] == 1.0 and table.loc["c3", "total"] == 1.0
    assert table.loc["c1", "total"] == pytest.approx(-1 / 12)
    md = kendall.to_markdown(table)
    assert "learning rate" in md and "total score" in md and "—" in md and "-0.08" in md
    tex = kendall.to_latex(table)
    assert "\\begin{tabular}" in tex and "$c_3$" in tex and "---" in tex and "1.00" in tex


def test_no_group_anywhere_gives_nan_total():
    models = hand_grid().iloc[[0, 4]].reset_index(drop=True)  # differ in lr and bs at once
    row = kendall.granulated_kendall(models, "c1")
    assert row.isna().all()


def test_unknown_axis_and_generalization_are_named():
    with pytest.raises(ValueError, match="unknown Kendall axis.*'lr'"):
        kendall.axis_groups(hand_grid(), axes=("lr",))
    with pytest.raises(ValueError, match="generalization must be"):
        kendall.generalization_values(hand_grid(), "accuracy")
    with pytest.raises(KeyError, match="depth"):
        kendall.axis_groups(hand_grid().drop(columns="depth"))


def test_k_curve_equals_granulated_kendall_at_each_k():
    models = paper_grid()
    rng = np.random.default_rng(3)
    models["test_acc"] = rng.uniform(0.3, 0.9, len(models))
    rows = []
    for i, model in enumerate(models["model"]):
        for measure, ks in (("c1", range(1, 4)), ("c3", range(1, 6))):
            for k in ks:
                if measure == "c3" and k == 5 and i % 2:  # half the models have < 5 neurons
                    continue
                value = models.loc[i, "test_acc"] * k + rng.normal(scale=0.2)
                rows.append(dict(model=model, checkpoint="final", measure=measure, scope="k_sweep",
                                 k=k, layer=None, subclass=None, neuron=None, value=value))
    tidy = pd.DataFrame(rows)
    curve = kendall.kendall_k_curve(models, tidy)
    assert list(curve.columns) == ["measure", "k", *AXES, "total"]
    assert curve.groupby("measure")["k"].apply(list).to_dict() == {"c1": [1, 2, 3], "c3": [1, 2, 3, 4, 5]}
    for _, row in curve.iterrows():
        at_k = tidy[(tidy.measure == row.measure) & (tidy.k == row.k)].set_index("model")["value"]
        frame = models.assign(x=models["model"].map(at_k))
        keep = frame["x"].notna()
        expected = kendall.granulated_kendall(frame[keep].reset_index(drop=True), "x")
        assert row["total"] == pytest.approx(expected["total"], abs=1e-12)
    assert kendall.kendall_k_curve(models, tidy.iloc[:0]).empty


def test_orientation_sharpness_equal_to_the_gap_and_intraclass_equal_to_accuracy_get_plus_one():
    """Paper Tables 1-3: positive = predicts generalization in the expected direction."""
    models = paper_grid()
    rng = np.random.default_rng(5)
    models["test_acc"] = rng.uniform(0.3, 0.9, len(models))
    models["train_acc"] = rng.uniform(0.95, 1.0, len(models))
    models["c3"] = models["test_acc"]  # intraclass: higher = better
    for generalization in ("test_acc", "gap"):
        # under test_acc, the gap ranks like -test_acc only at a fixed train_acc
        frame = models.assign(train_acc=1.0) if generalization == "test_acc" else models.copy()
        frame["sigma1"] = frame["train_acc"] - frame["test_acc"]  # sharpness: higher = worse
        frame["alpha2"] = frame["sigma1"] * 10.0
        if generalization == "gap":
            frame["c3"] = -frame["sigma1"]
        table = kendall.kendall_table(frame, generalization)
        assert list(table.index) == ["c3", "sigma1", "alpha2"]
        assert (table.to_numpy() == 1.0).all(), (generalization, table)
    # stored values are unchanged and the raw (unoriented) ranking would be -1
    assert kendall.direction("sigma1") == -1 and kendall.direction("c3") == 1
    assert kendall.direction("not_a_measure") == 1
    raw = kendall.granulated_kendall_columns(models[["test_acc"]].to_numpy() * -1, models["test_acc"].to_numpy(),
                                            kendall.axis_groups(models))
    assert (raw.to_numpy() == -1.0).all()


def test_k_curve_uses_the_measures_direction(monkeypatch):
    models = hand_grid()
    tidy = pd.DataFrame([dict(model=m, checkpoint="final", measure="c3", scope="k_sweep", k=1,
                              layer=None, subclass=None, neuron=None, value=a)
                         for m, a in zip(models["model"], models["test_acc"])])
    assert kendall.kendall_k_curve(models, tidy)["total"].tolist() == [1.0]
    monkeypatch.setattr(kendall, "direction", lambda m: -1 if m == "c3" else 1)
    assert kendall.kendall_k_curve(models, tidy)["total"].tolist() == [-1.0]


def test_direction_reads_measures_registered_after_import():
    """A plug-in declared after intraclass.kendall was imported is oriented by its declaration."""
    from intraclass.measures import registry

    registry.register(registry.Measure(
        name="late_complexity", label="late", latex="late", family="Plug-ins", direction=-1,
        needs="weights", stage="late_stage"))
    try:
        assert kendall.direction("late_complexity") == -1
        frame = pd.DataFrame({"late_complexity": [1.0, 2.0], "c3": [1.0, None]})
        assert kendall.measure_columns(frame) == ["c3", "late_complexity"]
    finally:
        registry.unregister("late_complexity")


def test_intervals_in_markdown_and_latex_cells():
    table = pd.DataFrame({"total": [0.734, np.nan], "total_lo": [0.61, np.nan], "total_hi": [0.821, np.nan]},
                         index=pd.Index(["c1", "sigma1"], name="measure"))
    md = kendall.to_markdown(table, ["first note", "second"])
    assert "| 0.73 [0.61, 0.82] |" in md and "| — |" in md and "total_lo" not in md
    assert md.endswith("\nfirst note\n\nsecond\n")
    tex = kendall.to_latex(table, ["a 5% note_"])
    assert "0.73 [0.61, 0.82]" in tex and "\\caption{a 5% note_}" in tex
    assert kendall.latex_escape("5% a_b {x}") == "5\\% a\\_b \\{x\\}"


def write_study(tmp_path, rng, images=400):
    """models.csv (with status, at-bound flags and devices), measures.csv.gz, test_correct.npz."""
    models = paper_grid()
    truth = rng.uniform(0.5, 0.9, len(models))
    correct = rng.random((len(models), images)) < truth[:, None]
    models["train_acc"] = 1.0
    models["test_acc"] = correct.mean(axis=1)
    for m in ("c3", "c4", "sigma1"):
        models[m] = models["test_acc"] * kendall.direction(m) + rng.normal(scale=0.05, size=len(models))
    models["sigma1_at_bound"] = np.arange(len(models)) % 4 == 0
    models["status"] = "ok"
    models.loc[[5, 9], "status"] = "failed"
    models.loc[[5, 9], "c3"] = np.nan
    models["reason"] = ""
    models.loc[[5, 9], "reason"] = ["diverged at epoch 3", "no_activations & 50%"]
    models["device"] = np.where(np.arange(len(models)) < 100, "cpu", "cuda")
    models.to_csv(tmp_path / "models.csv", index=False)
    tidy = pd.DataFrame([dict(model=m, checkpoint="final", measure="c3", scope="k_sweep", k=k,
                              layer=None, subclass=None, neuron=None, value=a * k + rng.normal(scale=0.1))
                         for m, a in zip(models["model"], models["test_acc"]) for k in (1, 2)])
    tidy.to_csv(tmp_path / "measures.csv.gz", index=False)
    order = rng.permutation(len(models))  # the npz may list the models in any order
    np.savez(tmp_path / "test_correct.npz", models=models["model"].to_numpy()[order].astype(str),
             correct=correct[order])
    return models


def outputs(tmp_path):
    names = {"csv": "kendall.csv", "md": "kendall.md", "tex": "kendall.tex", "k_curve": "kendall_k.csv",
             "cmi_csv": "cmi.csv", "cmi_md": "cmi.md", "cmi_tex": "cmi.tex"}
    return {key: tmp_path / "tables" / name for key, name in names.items()}


def test_write_evaluation_files(tmp_path):
    from intraclass.evaluation.tables import write_evaluation

    models = write_study(tmp_path, np.random.default_rng(4))
    out = outputs(tmp_path)
    write_evaluation(tmp_path / "models.csv", tmp_path / "measures.csv.gz", tmp_path / "test_correct.npz", out,
                     k={"c3": 30, "c4": 5}, bootstrap_settings={"resamples": 200, "seed": 1})
    table = pd.read_csv(out["csv"], index_col="measure")
    assert list(table.index) == ["c3", "c4", "sigma1"]
    assert list(table.columns[:9]) == [*AXES, "total"]
    usable = models[models["status"] == "ok"].reset_index(drop=True)
    for m in ("c3", "sigma1"):
        expected = kendall.granulated_kendall(usable, m)["total"]
        assert table.loc[m, "total"] == pytest.approx(expected, abs=1e-5)
        assert table.loc[m, "total_lo"] <= table.loc[m, "total"] + 1e-9 <= table.loc[m, "total_hi"] + 2e-9
    assert table.loc["sigma1", "total"] > 0.5  # oriented: the sharpness measure predicts
    assert table["weight_decay_lo"].notna().all() and table["weight_decay_hi"].notna().all()
    md = out["md"].read_text()
    assert "c3: k=30" in md and "1/σ'" in md and "Positive = ranks models" in md
    assert "400 test images" in md and "200 resamples, seed 1" in md
    assert "1/σ': 48 of 48 at the search bound" not in md and "1/σ': 48 of 190 at the search bound" in md
    assert "cpu: 98, cuda: 92" in md and "m5 (diverged at epoch 3)" in md and "m9 (no_activations & 50%)" in md
    cell = f"{table.loc['c3', 'total']:.2f} [{table.loc['c3', 'total_lo']:.2f}, {table.loc['c3', 'total_hi']:.2f}]"
    assert cell in md
    tex = out["tex"].read_text()
    assert "no\\_activations \\& 50\\%" in tex and "$1/\\sigma'$: 48 of 190" in tex and "95\\%" in tex
    curve = pd.read_csv(out["k_curve"])
    assert curve["k"].tolist() == [1, 2] and {"total_lo", "total_hi"} <= set(curve.columns)
    assert (curve["total_lo"] <= curve["total_hi"]).all()
    cmi_table = pd.read_csv(out["cmi_csv"], index_col="measure")
    assert list(cmi_table.index) == ["c3", "c4", "sigma1"] and {"K", "S_min", "none", *AXES} <= set(cmi_table.columns)
    assert "Conditional mutual information K" in out["cmi_md"].read_text()
    assert "m5 (diverged" in out["cmi_md"].read_text()
    assert not list((tmp_path / "tables").glob(".*partial*"))


def test_write_evaluation_without_bootstrap_or_correctness(tmp_path):
    from intraclass.evaluation.tables import write_evaluation

    write_study(tmp_path, np.random.default_rng(5))
    out = outputs(tmp_path)
    for correct, settings, says in ((tmp_path / "test_correct.npz", {"resamples": 0}, "bootstrap disabled"),
                                    (None, None, "no per-image correctness")):
        write_evaluation(tmp_path / "models.csv", tmp_path / "measures.csv.gz", correct, out,
                         bootstrap_settings=settings, cmi_variant="pgdl")
        table = pd.read_csv(out["csv"], index_col="measure")
        assert table["total_lo"].isna().all() and table["total"].notna().all()
        md = out["md"].read_text()
        assert says in md and "[" not in md.split("\n")[2]
        assert "PGDL" in out["cmi_md"].read_text()
    with pytest.raises(ValueError, match="analysis.cmi.variant"):
        write_evaluation(tmp_path / "models.csv", tmp_path / "measures.csv.gz", None, out, cmi_variant="x")
    np.savez(tmp_path / "bad.npz", models=np.array(["m0"]), correct=np.ones((1, 3), bool))
    with pytest.raises(ValueError, match="bad.npz has no correctness for model"):
        write_evaluation(tmp_path / "models.csv", tmp_path / "measures.csv.gz", tmp_path / "bad.npz", out)


def test_notes_state_the_sharpness_target_when_the_table_has_sharpness(tmp_path):
    from intraclass.evaluation.tables import write_evaluation
    from intraclass.sharpness_settings import target_description

    write_study(tmp_path, np.random.default_rng(6))
    out = outputs(tmp_path)
    relative = {"target_mode": "relative", "deviation": 0.05}
    write_evaluation(tmp_path / "models.csv", tmp_path / "measures.csv.gz", None, out, sharpness=relative)
    sentence = target_description(relative)
    assert "minus 0.05" in sentence
    for name in ("md", "cmi_md"):
        assert sentence in out[name].read_text()
    assert kendall.latex_escape(sentence) in out["tex"].read_text()
    for defaults in ({}, {"sigma": {"target": 0.9}, "alpha": {"target": 0.9}}):  # {}: every key default
        write_evaluation(tmp_path / "models.csv", tmp_path / "measures.csv.gz", None, out, sharpness=defaults)
        assert "target a training accuracy of 0.9 for every model" in out["md"].read_text()
    write_evaluation(tmp_path / "models.csv", tmp_path / "measures.csv.gz", None, out)  # no sharpness
    assert "Sharpness searches" not in out["md"].read_text()
    # a table without sharpness rows says nothing about the searches
    models = pd.read_csv(tmp_path / "models.csv").drop(columns=["sigma1", "sigma1_at_bound"])
    models.to_csv(tmp_path / "models.csv", index=False)
    write_evaluation(tmp_path / "models.csv", tmp_path / "measures.csv.gz", None, out, sharpness=relative)
    assert "Sharpness searches" not in out["md"].read_text() + out["cmi_md"].read_text()


def test_axis_subset_still_groups_on_every_other_hyperparameter():
    """Asking for one axis must not merge models that differ on an axis not reported."""
    from intraclass.kendall import axis_groups

    hparams = pd.DataFrame({
        "lr": [0.1, 0.01, 0.1, 0.01], "batch_size": [32, 32, 128, 128], "weight_decay": 0.0,
        "optimizer": "sgd", "dropout": 0.0, "augment": False, "width": 1.0, "depth": 1.0,
        "seed": 0,
    })
    groups = axis_groups(hparams, axes=("learning_rate",))
    assert sorted(map(sorted, map(list, groups["learning_rate"]))) == [[0, 1], [2, 3]]


@pytest.mark.slow
def test_tiny_study_writes_the_oriented_table_with_intervals_and_the_cmi_table(tmp_path):
    """End to end on the tiny study (4 models: batch size x optimizer): the kendall rule
    reads collect's per-image correctness and writes intervals, notes and the CMI table;
    Figures 3 and 4 are drawn from them."""
    import subprocess
    import sys
    from pathlib import Path

    repo = Path(__file__).resolve().parents[1]
    tables = Path("results/tiny/tables")
    targets = [str(tables / f"{name}") for name in ("kendall.csv", "kendall.md", "kendall_k.csv", "cmi.csv",
                                                    "cmi.md", "cmi.tex")]
    targets += ["results/tiny/figures/fig3.png", "results/tiny/figures/fig4.png"]
    cmd = [sys.executable, "-m", "snakemake", "--cores", "2", "--configfile", str(repo / "tests/configs/tiny.yaml"),
           "--directory", str(tmp_path), *targets]
    run = subprocess.run(cmd, cwd=repo, capture_output=True, text=True, timeout=1500)
    assert run.returncode == 0, (run.stdout + run.stderr)[-6000:]
    out = tmp_path / tables
    table = pd.read_csv(out / "kendall.csv", index_col="measure")
    assert {"c1", "c3", "sigma1"} <= set(table.index)
    for column in ("batch_size", "optimizer", "total"):
        assert table[column].notna().all()
        assert (table[f"{column}_lo"] <= table[column] + 1e-9).all()
        assert (table[column] <= table[f"{column}_hi"] + 1e-9).all()
    assert table["learning_rate_lo"].isna().all()  # one learning rate: no group, no interval
    md = (out / "kendall.md").read_text()
    assert "Positive = ranks models" in md and "paired bootstrap over the" in md and "Noise floor:" in md
    assert " [" in md.splitlines()[2]
    curve = pd.read_csv(out / "kendall_k.csv")
    assert curve["total_lo"].notna().all() and (curve["total_lo"] <= curve["total_hi"]).all()
    cmi_table = pd.read_csv(out / "cmi.csv", index_col="measure")
    assert list(cmi_table.index) == list(table.index) and cmi_table["K"].notna().all()
    assert "Conditional mutual information K" in (out / "cmi.md").read_text()
    assert (tmp_path / "results/tiny/figures/fig3.png").stat().st_size > 1000


def test_fit_note_counts_the_models_that_fit_and_names_the_others_lowest_first():
    from intraclass.evaluation.notes import FIT_ACCURACY, fit_note, table_notes

    models = pd.DataFrame({"model": ["a", "b_1", "c", "d"], "test_acc": 0.8,
                           "train_acc": [1.0, 0.97, FIT_ACCURACY, np.nan]})
    assert fit_note(models) == ("Training fit: 2 of 4 models reach 99% training accuracy; "
                                "not: b_1 (97.0%), d (no value).")
    assert fit_note(models, kendall.latex_escape).startswith("Training fit: 2 of 4 models reach 99\\% training")
    assert "b\\_1 (97.0\\%)" in fit_note(models, kendall.latex_escape)
    assert fit_note(models.iloc[[0, 2]]) == "Training fit: 2 of 2 models reach 99% training accuracy."
    assert fit_note(models.drop(columns="train_acc")) is None
    notes = table_notes(models, models.iloc[:0], ["c3"], {}, None)
    assert notes[1].startswith("Training fit: 2 of 4")


def test_min_train_acc_ranks_only_the_models_that_fit(tmp_path):
    """analysis.min_train_acc: the table equals the one of the fitting models alone, and the
    others are listed as excluded with their training accuracy."""
    from intraclass.evaluation.tables import write_evaluation

    models = write_study(tmp_path, np.random.default_rng(7))
    models["train_acc"] = np.where(np.arange(len(models)) % 3 == 0, 0.95, 1.0)
    models.loc[1, "train_acc"] = np.nan
    models.to_csv(tmp_path / "models.csv", index=False)
    out = outputs(tmp_path)
    table, _ = write_evaluation(tmp_path / "models.csv", tmp_path / "measures.csv.gz", None, out,
                                min_train_acc=0.99)
    fitting = models[(models["train_acc"] >= 0.99) & (models["status"] == "ok")]
    fitting.to_csv(tmp_path / "fitting.csv", index=False)
    alone, _ = write_evaluation(tmp_path / "fitting.csv", tmp_path / "measures.csv.gz", None, outputs(tmp_path / "b"))
    pd.testing.assert_frame_equal(table, alone)
    md = out["md"].read_text()
    assert f"{models.loc[3, 'model']} (training accuracy 95.0% below analysis.min_train_acc 0.99)" in md
    assert f"{models.loc[1, 'model']} (training accuracy no value below" in md
    assert "diverged at epoch 3" in md  # the failed models stay listed
    assert f"Training fit: {len(fitting)} of {len(fitting)} models" in md
    unchanged, _ = write_evaluation(tmp_path / "models.csv", tmp_path / "measures.csv.gz", None, out)
    assert not unchanged.equals(table)


def test_min_train_acc_is_a_fraction_in_the_schema():
    import yaml

    from intraclass.config import ConfigError, validate_config

    root = Path(__file__).resolve().parents[1]
    config = yaml.safe_load((root / "config" / "config.yaml").read_text())
    (study,) = config["studies"].values()
    study["analysis"]["min_train_acc"] = 0.99
    validate_config(config, root / "config" / "schema.yaml")
    study["analysis"]["min_train_acc"] = 99
    with pytest.raises(ConfigError, match="min_train_acc"):
        validate_config(config, root / "config" / "schema.yaml")
