"""Conditional mutual information (intraclass.evaluation.cmi; Jiang et al. 2020, Sec. 4; PGDL)."""

import itertools
import math

import numpy as np
import pandas as pd
import pytest

from intraclass.evaluation import cmi

AXES = ("learning_rate", "batch_size", "width")


def grid(seed: int = 0, coupled: bool = False) -> pd.DataFrame:
    rows = []
    for lr, batch, width in itertools.product([0.01, 0.1, 0.32], [100, 300], [1.0, 1.5]):
        if coupled and lr == 0.32 and width == 1.5:  # a value combination that never occurs
            continue
        rows.append(dict(model=f"m{len(rows)}", lr=lr, batch_size=batch, width=width))
    return pd.DataFrame(rows)


def entropy(counts) -> float:
    total = sum(counts)
    return -sum(c / total * math.log2(c / total) for c in counts if c) if total else 0.0


def reference_cmi(measure, target, hparams: pd.DataFrame, subset, variant) -> float:
    """Plain loops over ordered pairs and dictionaries of slices."""
    columns = {"learning_rate": "lr", "batch_size": "batch_size", "width": "width"}
    tables: dict[tuple, dict[tuple, int]] = {}
    n = len(measure)
    for i in range(n):
        for j in range(n):
            if i == j or math.isnan(measure[i]) or math.isnan(measure[j]) or math.isnan(target[i]) \
                    or math.isnan(target[j]):
                continue
            u = tuple((hparams.loc[i, columns[a]], hparams.loc[j, columns[a]]) for a in subset)
            cell = (int(measure[i] > measure[j]), int(target[i] > target[j]))
            tables.setdefault(u, {}).setdefault(cell, 0)
            tables[u][cell] += 1
    pairs = sum(sum(t.values()) for t in tables.values())
    numerator = denominator = 0.0
    for table in tables.values():
        n_u = sum(table.values())
        joint = [table.get((a, b), 0) for a in (0, 1) for b in (0, 1)]
        h_mu = entropy([joint[0] + joint[1], joint[2] + joint[3]])
        h_g = entropy([joint[0] + joint[2], joint[1] + joint[3]])
        mutual = h_mu + h_g - entropy(joint)
        weight = n_u / pairs if variant == "jiang" else 1.0
        numerator += weight * mutual
        denominator += weight * h_g
    return numerator / denominator if denominator > 0 else math.nan


@pytest.mark.parametrize("variant", cmi.VARIANTS)
@pytest.mark.parametrize("coupled", [False, True])
def test_cmi_matches_plain_loops(variant, coupled):
    models = grid(coupled=coupled)
    rng = np.random.default_rng(7)
    for trial in range(3):
        target = rng.normal(size=len(models)).round(1)  # ties on both sides
        measure = (target + rng.normal(scale=0.7, size=len(models))).round(1)
        if trial == 2:
            measure[[1, 5]] = np.nan
            target[3] = np.nan
        scores = cmi.cmi_scores(measure, target, cmi.axis_codes(models, AXES), AXES, variant)
        assert set(scores) == set(cmi.conditioning_sets(AXES, variant))
        for subset, value in scores.items():
            expected = reference_cmi(measure, target, models, subset, variant)
            if math.isnan(expected):
                assert math.isnan(value), subset
            else:
                assert value == pytest.approx(expected, abs=1e-12), (variant, subset)


def test_three_models_by_hand():
    # g = (1, 2, 3), mu = (1, 3, 2). Ordered pairs (V_mu, V_g): (0,1):(0,0) (0,2):(0,0)
    # (1,0):(1,1) (1,2):(1,0) (2,0):(1,1) (2,1):(0,1): joint counts 2, 1, 1, 2 of 6.
    # H(V_g) = H(V_mu) = 1 bit; H(joint) = 2/3 log2 3 + 1/3 log2 6 = log2 3 + 1/3;
    # I = 2 - log2 3 - 1/3 = 5/3 - log2 3; CMI = I / H(V_g).
    models = pd.DataFrame({"model": ["a", "b", "c"], "lr": 0.1, "batch_size": 100, "width": 1.0})
    scores = cmi.cmi_scores(np.array([1.0, 3.0, 2.0]), np.array([1.0, 2.0, 3.0]),
                            cmi.axis_codes(models, AXES), AXES, "jiang")
    assert scores[()] == pytest.approx(5 / 3 - math.log2(3))
    # one value per axis: every conditioning set has the single slice of S empty
    assert all(v == pytest.approx(scores[()]) for v in scores.values())


def test_degenerate_and_empty_slices_give_no_nan():
    # Two models differing in the learning rate only. Conditioned on the learning rate,
    # each slice ((0.01, 0.1) and (0.1, 0.01)) holds one pair: V_g is constant, H = 0, the
    # set says nothing about the measure and is left out; the coupled grid's slices that
    # never occur carry no weight.
    models = pd.DataFrame({"model": ["a", "b"], "lr": [0.01, 0.1], "batch_size": 100, "width": 1.0})
    scores = cmi.cmi_scores(np.array([1.0, 2.0]), np.array([0.5, 0.7]), cmi.axis_codes(models, AXES), AXES, "jiang")
    assert math.isnan(scores[("learning_rate",)])
    assert scores[()] == 1.0 and scores[("batch_size",)] == 1.0
    row = cmi.summarize(scores, AXES, "jiang")
    assert row["K"] == 1.0 and not math.isnan(row["batch_size"])
    models = grid(coupled=True)
    rng = np.random.default_rng(1)
    target = rng.normal(size=len(models))
    table = cmi.cmi_table(models.assign(test_acc=target, train_acc=1.0), ["c1"], target[:, None], target, AXES)
    assert not table.drop(columns="S_min").isna().any().any()
    assert (table.drop(columns="S_min").to_numpy() == 1.0).all()  # a perfect measure: 1 everywhere


def test_pgdl_weights_slices_equally_and_reports_percent():
    # Slices of lr: (a, b) pairs. Jiang weighs by pairs, PGDL equally: pick a target where
    # the two disagree, and check both against the loops.
    models = grid()
    rng = np.random.default_rng(3)
    target, measure = rng.normal(size=len(models)), rng.normal(size=len(models))
    codes = cmi.axis_codes(models, AXES)
    jiang = cmi.cmi_scores(measure, target, codes, AXES, "jiang")
    pgdl = cmi.cmi_scores(measure, target, codes, AXES, "pgdl")
    assert set(pgdl) == {("learning_rate", "batch_size"), ("learning_rate", "width"), ("batch_size", "width")}
    assert any(abs(jiang[s] - pgdl[s]) > 1e-6 for s in pgdl)
    row = cmi.summarize(pgdl, AXES, "pgdl")
    assert row["K"] == pytest.approx(100 * min(pgdl.values()))
    assert "none" not in row


def test_orientation_and_target_of_the_pgdl_variant():
    # A sharpness measure equal to the gap (direction -1: oriented = -gap) predicts the
    # gap perfectly: PGDL ranks it as a complexity measure against the gap -> 100.
    models = grid()
    rng = np.random.default_rng(4)
    models["test_acc"] = rng.uniform(0.5, 0.9, len(models))
    models["train_acc"] = rng.uniform(0.95, 1.0, len(models))
    gap = (models["train_acc"] - models["test_acc"]).to_numpy()
    table = cmi.cmi_table(models, ["sigma1"], -gap[:, None], np.zeros(len(models)), AXES, "pgdl")
    assert table.loc["sigma1", "K"] == pytest.approx(100.0)
    jiang = cmi.cmi_table(models, ["sigma1"], -gap[:, None], -gap, AXES, "jiang")
    assert jiang.loc["sigma1", "K"] == pytest.approx(1.0) and jiang.loc["sigma1", "S_min"] == cmi.EMPTY


def test_unknown_variant_and_missing_column_are_named():
    with pytest.raises(ValueError, match="CMI variant must be one of"):
        cmi.conditioning_sets(AXES, "fancy")
    with pytest.raises(KeyError, match="width"):
        cmi.axis_codes(grid().drop(columns="width"), AXES)
