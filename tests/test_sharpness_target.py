"""Sharpness search targets (sharpness.target_mode): absolute (the authors' 0.9) and relative
(the model's own training accuracy minus a deviation, Jiang et al. 2020), on a tiny model
that trains below 90%."""

from __future__ import annotations

import json

import pytest
import torch
from torch import nn

from intraclass import sharpness as S

SEARCH = {"draws": 4, "subset": 1.0, "max_steps": 20, "tol": 0.01}


@pytest.fixture(scope="module")
def weak_model():
    """A linear classifier on overlapping Gaussian classes: training accuracy 0.6-0.85."""
    gen = torch.Generator().manual_seed(0)
    y = torch.arange(3).repeat_interleave(150)
    x = torch.randn(len(y), 5, generator=gen) + 0.9 * nn.functional.one_hot(y, 5).float()
    torch.manual_seed(0)
    model = nn.Linear(5, 3)
    opt = torch.optim.Adam(model.parameters(), lr=0.05)
    for _ in range(200):
        opt.zero_grad()
        nn.functional.cross_entropy(model(x), y).backward()
        opt.step()
    model.eval()
    with torch.no_grad():
        acc = (model(x).argmax(1) == y).float().mean().item()
    assert 0.6 < acc < 0.85
    return model, x, y, acc


def test_settings_validate_mode_and_deviation():
    s = S.resolve_settings(None)
    assert (s["target_mode"], s["deviation"]) == ("absolute", 0.1)
    assert S.resolve_settings({"target_mode": "relative", "deviation": 0.05})["deviation"] == 0.05
    with pytest.raises(ValueError, match="sharpness.target_mode must be absolute or relative"):
        S.resolve_settings({"target_mode": "own"})
    with pytest.raises(ValueError, match="sharpness.deviation"):
        S.resolve_settings({"deviation": 1.5})


def test_search_target_of_each_mode():
    absolute = S.resolve_settings({"alpha": {"target": 0.8}})
    assert S.search_target(absolute, "sigma", 0.7) == 0.9
    assert S.search_target(absolute, "alpha", 0.7) == 0.8
    relative = S.resolve_settings({"target_mode": "relative", "deviation": 0.1})
    assert S.search_target(relative, "sigma", 0.7) == pytest.approx(0.6)
    assert S.search_target(relative, "alpha", 0.7) == pytest.approx(0.6)
    assert S.search_target(relative, "sigma", 0.05) == 0.0  # never negative


def test_absolute_target_out_of_reach_ends_on_the_bound_relative_converges(weak_model):
    model, x, y, acc = weak_model
    absolute = S.compute_sharpness(model, x, y, {"measures": ["sigma1"], "sigma": SEARCH})
    assert absolute["train_accuracy"] == pytest.approx(acc)
    r = absolute["measures"]["sigma1"]
    assert (r["target"], r["target_mode"]) == (0.9, "absolute")
    assert not r["converged"] and r["at_bound"] and r["bound"] == "lower"  # "maximally sharp"

    relative = S.compute_sharpness(model, x, y, {"measures": ["sigma1"], "sigma": SEARCH,
                                                 "target_mode": "relative"})
    r = relative["measures"]["sigma1"]
    assert r["target_mode"] == "relative" and r["target"] == pytest.approx(acc - 0.1)
    assert r["converged"] and not r["at_bound"]
    assert abs(r["accuracy"] - (acc - 0.1)) <= SEARCH["tol"]
    assert 0 < r["m"] < S.DEFAULTS["sigma"]["m_max"]
    json.dumps(relative)  # the record stays JSON


def test_skipped_result_records_the_mode_and_no_target():
    skipped = S.skipped_result(S.resolve_settings({"target_mode": "relative", "measures": ["alpha1"]}),
                               "diverged", "nan loss")
    assert skipped["measures"]["alpha1"]["target"] is None
    assert skipped["measures"]["alpha1"]["target_mode"] == "relative"


def test_target_description_names_the_target():
    from intraclass.sharpness_settings import target_description

    assert "0.9" in target_description(None) and "absolute" in target_description(None)
    assert "0.9 (sigma) and 0.8 (alpha)" in target_description({"alpha": {"target": 0.8}})
    text = target_description({"target_mode": "relative", "deviation": 0.05})
    assert "minus 0.05" in text and "relative" in text
