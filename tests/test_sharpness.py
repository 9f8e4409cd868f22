"""Sharpness baselines (intraclass.sharpness): settings, bisection, model untouched,
seeded reproducibility, magnitude-aware scale invariance, flat vs sharp in direction."""

from __future__ import annotations

import copy
import json
import math
import sys
import types

import numpy as np
import pytest
import torch
from torch import nn

from intraclass import sharpness as S

# Few draws / steps: each test runs in well under a second or two on one core.
FAST = {
    "eval_batch_size": 128,
    "sigma": {"draws": 3, "subset": 0.5, "max_steps": 8},
    "alpha": {"epochs": 2, "steps_per_epoch": 4, "batch_size": 32, "max_steps": 6},
}


def tiny_cnn(classes: int = 3, dropout: float = 0.2) -> nn.Sequential:
    return nn.Sequential(
        nn.Conv2d(1, 6, 3, padding=1, bias=False), nn.BatchNorm2d(6), nn.ReLU(),
        nn.Conv2d(6, 8, 3, padding=1), nn.BatchNorm2d(8), nn.ReLU(), nn.Dropout(dropout),
        nn.AdaptiveMaxPool2d(1), nn.Flatten(), nn.Linear(8, classes),
    )


def patch_data(n_per_class: int = 100, classes: int = 3, seed: int = 0):
    """Images (N, 1, 8, 8): class c has a bright 3x3 patch at its own place, plus noise."""
    gen = torch.Generator().manual_seed(seed)
    y = torch.arange(classes).repeat_interleave(n_per_class)
    x = 0.6 * torch.randn(len(y), 1, 8, 8, generator=gen)
    for c in range(classes):
        row, col = divmod(2 * c, 4)
        x[y == c, 0, 3 * row:3 * row + 3, 2 * col:2 * col + 3] += 1.5
    return x, y


def train_tiny():
    """A tiny CNN trained to ~100% training accuracy on the patch data."""
    torch.manual_seed(0)
    x, y = patch_data()
    model = tiny_cnn()
    opt = torch.optim.Adam(model.parameters(), lr=0.03)
    model.train()
    for _ in range(80):
        opt.zero_grad()
        nn.functional.cross_entropy(model(x), y).backward()
        opt.step()
    model.eval()
    with torch.no_grad():
        assert (model(x).argmax(1) == y).float().mean() > 0.97
    return model, x, y


@pytest.fixture(scope="module")
def trained():
    return train_tiny()


def settings(**overrides):
    out = copy.deepcopy(FAST)
    for key, value in overrides.items():
        if isinstance(value, dict):
            out.setdefault(key, {}).update(value)
        else:
            out[key] = value
    return out


def without_seconds(result: dict) -> dict:
    return {name: {k: v for k, v in r.items() if k != "seconds"} for name, r in result["measures"].items()}


# --------------------------------------------------------------------------- settings

def test_defaults_are_the_reference_settings():
    s = S.resolve_settings(None)
    assert s["measures"] == ["sigma1", "sigma2", "alpha1", "alpha2"]
    assert (s["sigma"]["draws"], s["sigma"]["subset"], s["sigma"]["m_min"], s["sigma"]["m_max"]) == (10, 0.1, 0.0, 2.0)
    a = s["alpha"]
    assert (a["lr"], a["lr_decay"], a["lr_decay_epoch"], a["epochs"], a["steps_per_epoch"],
            a["batch_size"], a["stop_acc"], a["m_max"]) == (1.0, 0.1, 3, 5, 50, 128, 0.7, 0.25)
    for kind in ("sigma", "alpha"):
        k = s[kind]
        assert (k["max_steps"], k["target"], k["tol"], k["min_width"], k["offset"]) == (20, 0.9, 5e-3, 1e-5, 1e-3)


def test_overrides_are_key_by_key_and_leave_defaults_alone():
    s = S.resolve_settings({"sigma": {"draws": 2}, "seed": 3, "alpha": {"m_max": 1}})
    assert s["sigma"]["draws"] == 2 and s["sigma"]["subset"] == 0.1 and s["seed"] == 3
    assert s["alpha"]["m_max"] == 1.0 and isinstance(s["alpha"]["m_max"], float)
    assert S.DEFAULTS["sigma"]["draws"] == 10  # the defaults were not mutated


@pytest.mark.parametrize("bad, words", [
    ({"sigmas": {}}, "unknown key 'sigmas'"),
    ({"sigma": {"draw": 3}}, "sharpness.sigma: unknown key 'draw'"),
    ({"sigma": {"draws": 0}}, "sharpness.sigma.draws"),
    ({"sigma": {"subset": 1.5}}, "sharpness.sigma.subset"),
    ({"alpha": {"batch_size": 12.5}}, "sharpness.alpha.batch_size"),
    ({"bf16": "yes"}, "sharpness.bf16"),
    ({"seed": True}, "sharpness.seed"),
    ({"measures": ["sigma3"]}, "unknown measure"),
    ({"measures": "sigma1"}, "sharpness.measures"),
    ({"alpha": {"m_min": 0.3}}, "m_min"),
    ([1, 2], "must be a mapping"),
])
def test_bad_settings_name_the_key(bad, words):
    with pytest.raises(ValueError, match=words.replace("(", r"\(")):
        S.resolve_settings(bad)


# -------------------------------------------------------------------------- bisection

def test_bisection_finds_the_target_of_a_known_curve():
    # acc(m) = 1 - m: target 0.9 at m = 0.1; the stop is |acc - target| <= tol.
    result = S.bisect(lambda m: {"acc": 1.0 - m}, m_min=0.0, m_max=2.0, max_steps=20,
                      target=0.9, tol=5e-3, min_width=1e-5)
    assert result.converged and abs(result.accuracy - 0.9) <= 5e-3
    assert abs(result.m - 0.1) <= 5e-3 and result.value == pytest.approx(1 / result.m)
    assert result.trace[0] == {"m": 1.0, "acc": 0.0} and result.trace[-1]["m"] == result.m
    assert len(result.trace) < 20


def test_bisection_on_a_cliff_stops_on_the_interval_width():
    # acc jumps from 1 to 0 at m = 0.3: the target is never met; the interval closes on 0.3.
    result = S.bisect(lambda m: {"acc": float(m < 0.3)}, m_min=0.0, m_max=2.0, max_steps=40,
                      target=0.9, tol=5e-3, min_width=1e-5)
    assert not result.converged and abs(result.m - 0.3) < 1e-5
    assert len(result.trace) == math.ceil(math.log2(2.0 / 1e-5))  # halvings until width < 1e-5
    capped = S.bisect(lambda m: {"acc": float(m < 0.3)}, m_min=0.0, m_max=2.0, max_steps=5,
                      target=0.9, tol=5e-3, min_width=1e-5)
    assert len(capped.trace) == 5 and not capped.converged
    # both ends of the interval moved: an unresolved value, but not at a bound
    assert not result.at_bound and not capped.at_bound and result.bound is None


@pytest.mark.parametrize("steps", [1, 3, 20])
def test_bisection_forced_to_each_bound_is_flagged(steps):
    """Accuracy always below the target: the interval shrinks onto m_min (lower bound);
    always above: it grows onto m_max (upper bound). Flags hold for any step budget."""
    search = dict(m_min=0.0, m_max=2.0, max_steps=steps, target=0.9, tol=5e-3, min_width=1e-5)
    low = S.bisect(lambda m: {"acc": 0.2}, **search)
    assert (low.at_bound, low.bound, low.converged) == (True, "lower", False)
    assert low.m == 2.0 / 2 ** len(low.trace)  # every step halved towards m_min
    high = S.bisect(lambda m: {"acc": 1.0}, **search)
    assert (high.at_bound, high.bound, high.converged) == (True, "upper", False)
    assert high.m == 2.0 - 2.0 / 2 ** len(high.trace)
    # a first midpoint on target converges with both ends untouched: not at a bound
    hit = S.bisect(lambda m: {"acc": 0.9}, **search)
    assert hit.converged and not hit.at_bound and hit.bound is None


@pytest.mark.parametrize("curve, bound", [(lambda m: 1.0 - m / 1e-6, "lower"),
                                          (lambda m: 1.0, "upper"),
                                          (lambda m: 1.0 - m, None)])
def test_search_bound_against_a_plain_rerun_of_the_interval(curve, bound):
    """search_bound on the final interval of a plain reimplementation of the bisection."""
    low, high = 0.0, 0.25
    for _ in range(6):
        m = (low + high) / 2
        acc = curve(m)
        if abs(acc - 0.9) <= 1e-9:
            break
        low, high = (m, high) if acc > 0.9 else (low, m)
    result = S.bisect(lambda m: {"acc": curve(m)}, m_min=0.0, m_max=0.25, max_steps=6,
                      target=0.9, tol=1e-9, min_width=0.0)
    assert S.search_bound(low, high, 0.0, 0.25) == bound == result.bound


def test_sigma_bisection_converges_on_a_trained_model(trained):
    model, x, y = trained
    s = settings(measures=["sigma1"], sigma={"draws": 10, "subset": 1.0, "max_steps": 20})
    result = S.compute_sharpness(model, x, y, s)["measures"]["sigma1"]
    assert result["converged"] and abs(result["accuracy"] - 0.9) <= 5e-3
    # An independent estimate at the m found (other seed, more draws) agrees.
    probe = S.sigma_probe(model, S.Evaluator(x, y, None, 128), False,
                          {**S.DEFAULTS["sigma"], "draws": 20, "subset": 1.0},
                          torch.Generator().manual_seed(123))
    assert abs(probe(result["m"])["acc"] - 0.9) < 0.03
    # The trace brackets the target: probes below m are more accurate than probes above it.
    above = [p["acc"] for p in result["trace"] if p["m"] > result["m"] * 1.5]
    below = [p["acc"] for p in result["trace"] if p["m"] < result["m"] / 1.5]
    assert all(a < 0.9 for a in above) and all(b > 0.9 for b in below)


def test_alpha_probe_at_zero_is_the_plain_accuracy_and_ascent_hurts(trained):
    model, x, y = trained
    order = torch.randperm(len(y), generator=torch.Generator().manual_seed(1))
    evaluator = S.Evaluator(x[order], y[order], None, 128)  # mixed classes in every batch
    cfg = {**S.DEFAULTS["alpha"], "epochs": 2, "steps_per_epoch": 10, "subset": 1.0}
    for kernels_only in (False, True):
        probe = S.alpha_probe(model, evaluator, kernels_only, cfg, torch.Generator().manual_seed(0))
        with S.forward_mode(model, batch_stats=kernels_only):
            plain = evaluator.correct(model, torch.arange(len(y))).item() / len(y)
        # A zero box leaves no room to move: the plain accuracy (exactly so with running
        # statistics; with batch statistics the probe's batches are other random ones).
        assert probe(0.0)["acc"] == pytest.approx(plain, abs=0 if not kernels_only else 0.02)
        hurt = probe(0.25)
        assert hurt["acc"] < plain - 0.05 and hurt["ascent_steps"] >= 1


# ------------------------------------------------------------------ model left untouched

def test_model_state_and_modes_restored_bit_for_bit(trained):
    model, x, y = trained
    model = copy.deepcopy(model)
    model.train()  # an unusual mode on entry must be restored as well
    model[6].eval()
    before = {k: v.clone() for k, v in model.state_dict().items()}
    modes = [m.training for m in model.modules()]
    S.compute_sharpness(model, x, y, settings())
    after = model.state_dict()
    assert before.keys() == after.keys()
    for key in before:
        assert torch.equal(before[key], after[key]), key
    assert [m.training for m in model.modules()] == modes
    assert all(m.track_running_stats for m in model.modules() if isinstance(m, nn.BatchNorm2d))


@pytest.mark.parametrize("measure", S.MEASURES)
def test_model_restored_when_a_probe_fails(trained, measure):
    model, x, y = trained
    model = copy.deepcopy(model)
    before = {k: v.clone() for k, v in model.state_dict().items()}
    calls = []
    unperturbed_calls = math.ceil(len(y) / 64)  # the plain training accuracy comes first

    def failing(batch):  # fails in the 2nd batch of a perturbed evaluation (or ascent)
        calls.append(1)
        if len(calls) == unperturbed_calls + 2:
            raise RuntimeError("boom")
        return batch

    with pytest.raises(RuntimeError, match="boom"):
        S.compute_sharpness(model, x, y, settings(measures=[measure], eval_batch_size=64),
                            preprocess=failing)
    for key, value in model.state_dict().items():
        assert torch.equal(before[key], value), key


def test_batch_statistics_mode_uses_batch_statistics_without_updating_buffers(trained):
    model, x, _ = trained
    model = copy.deepcopy(model)
    reference = copy.deepcopy(model).train()
    reference[6].p = 0.0  # dropout off, as in forward_mode
    buffers = {k: v.clone() for k, v in model.named_buffers()}
    with torch.no_grad(), S.forward_mode(model, batch_stats=True):
        out = model(x[:50])
    with torch.no_grad():
        expected = reference(x[:50])  # training mode: batch statistics (and it updates its buffers)
    torch.testing.assert_close(out, expected, rtol=0, atol=0)
    assert all(torch.equal(buffers[k], v) for k, v in model.named_buffers())
    assert not model.training


# ------------------------------------------------------------------------ reproducibility

def test_same_seed_same_result_other_seed_other_draws(trained):
    model, x, y = trained
    first = S.compute_sharpness(model, x, y, settings(seed=7))
    again = S.compute_sharpness(model, x, y, settings(seed=7))
    assert without_seconds(first) == without_seconds(again)
    other = S.compute_sharpness(model, x, y, settings(seed=8, measures=["sigma1"]))
    assert other["measures"]["sigma1"]["trace"] != first["measures"]["sigma1"]["trace"]
    # A measure's draws do not depend on which other measures are computed.
    alone = S.compute_sharpness(model, x, y, settings(seed=7, measures=["alpha2"]))
    assert without_seconds(alone)["alpha2"] == without_seconds(first)["alpha2"]


# ------------------------------------------------------- what magnitude-aware noise sees

def scaled_copy(model: nn.Sequential, conv: int, norm: int | None, c: float) -> nn.Sequential:
    """Same function, layer ``conv`` scaled by ``c`` (a power of two: exact in floats).

    A layer followed by batch norm: the norm's running mean, variance and eps scale by
    c, c^2, c^2, so inference mode computes exactly the same; batch statistics scale by
    themselves. The logit layer: logits scale by c, the argmax does not change.
    """
    twin = copy.deepcopy(model)
    with torch.no_grad():
        for p in twin[conv].parameters():
            p.mul_(c)
        if norm is not None:
            twin[norm].running_mean.mul_(c)
            twin[norm].running_var.mul_(c * c)
            twin[norm].eps *= c * c
    return twin


@pytest.mark.parametrize("conv, norm", [(0, 1), (3, 4), (9, None)])
@pytest.mark.parametrize("measure", ["sigma1", "sigma2"])
def test_magnitude_aware_noise_is_invariant_to_layer_scale(trained, conv, norm, measure):
    # offset = 0: the noise m|w|z scales with the layer, so the perturbed networks compute
    # the same function and the bisection sees exactly the same accuracies.
    model, x, y = trained
    s = settings(measures=[measure], sigma={"offset": 0.0, "max_steps": 6})
    for c in (8.0, 0.125):
        twin = scaled_copy(model, conv, norm, c)
        assert without_seconds(S.compute_sharpness(twin, x, y, s)) == \
            without_seconds(S.compute_sharpness(model, x, y, s))


def test_offset_breaks_the_invariance_for_tiny_weights(trained):
    # With the default offset 1e-3, a kernel scaled to ~1e-4 gets noise dominated by the
    # offset: the same m perturbs it far more (relative to its size) than the original.
    model, x, y = trained
    evaluator = S.Evaluator(x, y, None, 128)
    cfg = {**S.DEFAULTS["sigma"], "draws": 5, "subset": 1.0}
    twin = scaled_copy(model, 0, 1, 2.0 ** -12)
    accs = [S.sigma_probe(m, evaluator, True, cfg, torch.Generator().manual_seed(0))(0.5)["acc"]
            for m in (model, twin)]
    assert accs[1] < accs[0] - 0.1


def margin_model(bias_shift: float) -> nn.Linear:
    """Logit of class 1 minus class 0 = 2(x - bias_shift): boundary at x = bias_shift."""
    model = nn.Linear(1, 2)
    with torch.no_grad():
        model.weight.copy_(torch.tensor([[-1.0], [1.0]]))
        model.bias.copy_(torch.tensor([bias_shift, -bias_shift]))
    return model


def test_small_margin_is_sharper_than_large_margin_for_every_measure():
    # Negatives x in [-2, -1], positives x in [1, 2]. Both models classify all correctly;
    # the flat one puts the boundary at 0 (margin >= 1), the sharp one at 0.95 (margin 0.05).
    gen = torch.Generator().manual_seed(0)
    x = (1 + torch.rand(400, 1, generator=gen)) * torch.tensor([-1.0, 1.0]).repeat(200)[:, None]
    y = (x[:, 0] > 0).long()
    flat, sharp = margin_model(0.0), margin_model(0.95)
    s = settings(alpha={"steps_per_epoch": 10, "batch_size": 64})
    m = {name: S.compute_sharpness(model, x, y, s)["measures"] for name, model in
         (("flat", flat), ("sharp", sharp))}
    for measure in S.MEASURES:
        assert m["sharp"][measure]["value"] > m["flat"][measure]["value"], measure


# ------------------------------------------------------------------------ the rule's entry

def test_run_sharpness_writes_json_for_a_checkpoint(tmp_path, monkeypatch):
    """run_sharpness with real checkpoints and a stand-in for intraclass.data."""
    from intraclass.augment import channel_stats
    from intraclass.models import build_model, save_checkpoint

    gen = np.random.default_rng(0)
    images = gen.integers(0, 256, (40, 8, 8, 1), dtype=np.uint8)
    train_index = np.arange(0, 40, 2)
    dataset = types.SimpleNamespace(
        x_train=images,
        labels=lambda split, level: np.arange(40) % 3 if level == "fine" else np.arange(40) % 2,
    )
    data = types.ModuleType("intraclass.data")
    data.load_dataset = lambda path: dataset
    data.training_indices = lambda ds, per_class, seed: train_index
    monkeypatch.setitem(sys.modules, "intraclass.data", data)

    arch = {"arch": "vgg", "num_classes": 3, "in_channels": 1, "base_width": 2}
    torch.manual_seed(0)
    model = build_model(**arch)
    mean, std = channel_stats(images[train_index])
    # One checkpoint stores its normalization (as training writes it), one does not.
    save_checkpoint(tmp_path / "model.pt", model, arch, {"id": "m"}, "fine", 1,
                    normalization={"mean": mean.tolist(), "std": std.tolist()})
    save_checkpoint(tmp_path / "old.pt", model, arch, {"id": "m"}, "fine", 1)
    training = {"train_per_class": None, "data_seed": 0, "device": "cpu"}
    out = tmp_path / "sharpness" / "m.json"
    tiny = settings(measures=["sigma2", "alpha1"], sigma={"max_steps": 2}, alpha={"max_steps": 2})

    S.run_sharpness(tmp_path / "model.pt", "unused.npz", out, tiny, "fine", training)
    written = json.loads(out.read_text())
    assert written["n_train"] == 20 and set(written["measures"]) == {"sigma2", "alpha1"}
    assert written["status"] == "ok" and written["reason"] is None
    for result in written["measures"].values():
        assert set(result) == {"value", "m", "accuracy", "converged", "trace", "seconds",
                               "at_bound", "bound", "target", "target_mode"}
        assert (result["target"], result["target_mode"]) == (0.9, "absolute")
        assert len(result["trace"]) == 2 and result["value"] == pytest.approx(1 / result["m"])
    assert written["settings"]["sigma"]["max_steps"] == 2 and written["settings"]["sigma"]["draws"] == 3
    assert [p.name for p in out.parent.iterdir()] == ["m.json"]  # no temporary left behind

    # A checkpoint without the training normalization is refused, not guessed at.
    with pytest.raises(KeyError, match="has no 'normalization'"):
        S.run_sharpness(tmp_path / "old.pt", "unused.npz", tmp_path / "old.json", tiny,
                        "fine", training)
    assert not (tmp_path / "old.json").exists()

    with pytest.raises(ValueError, match="trained on 'fine'"):
        S.run_sharpness(tmp_path / "model.pt", "unused.npz", out, tiny, "coarse", training)
    with pytest.raises(ValueError, match="sharpness.sigma: unknown key"):
        S.run_sharpness(tmp_path / "model.pt", "unused.npz", out, {"sigma": {"n": 1}}, "fine",
                        training)
    with pytest.raises(KeyError, match="params.training lacks train_per_class, data_seed"):
        S.run_sharpness(tmp_path / "model.pt", "unused.npz", out, tiny, "fine", {"device": "cpu"})
    assert json.loads(out.read_text()) == written  # failed runs left the output alone


# ------------------------------------------------- the fast probes against plain loops

def plain_sigma_accuracy(model, x, y, kernels_only, cfg, generator, m):
    """Reference: a perturbed deep copy per draw, evaluated in one batch."""
    correct = seen = 0
    for _ in range(cfg["draws"]):
        idx = torch.randperm(len(y), generator=generator)[:max(1, round(cfg["subset"] * len(y)))]
        noisy = copy.deepcopy(model)
        with torch.no_grad():
            for p in noisy.parameters():
                if p.ndim > 1 or not kernels_only:
                    noise = torch.randn(p.shape, generator=generator)
                    p.copy_(p + m * (p.abs() + cfg["offset"]) * noise)
        noisy.eval()
        if kernels_only:  # batch statistics: batch norm in training mode on a throwaway copy
            for module in noisy.modules():
                if isinstance(module, nn.BatchNorm2d):
                    module.train()
        with torch.no_grad():
            correct += (noisy(x[idx]).argmax(1) == y[idx]).sum().item()
        seen += len(idx)
    return correct / seen


def plain_alpha_accuracy(model, x, y, kernels_only, cfg, generator, m):
    """Reference: torch.optim.SGD(maximize=True) on a deep copy, clamped to the box."""
    attacked = copy.deepcopy(model).eval()
    if kernels_only:
        for module in attacked.modules():
            if isinstance(module, nn.BatchNorm2d):
                module.train()
    params = [p for p in attacked.parameters() if p.ndim > 1 or not kernels_only]
    boxes = [(p.detach() - m * (p.detach().abs() + cfg["offset"]),
              p.detach() + m * (p.detach().abs() + cfg["offset"])) for p in params]
    optimizer = torch.optim.SGD(params, lr=cfg["lr"], maximize=True)
    stopped = False
    for epoch in range(cfg["epochs"]):
        for group in optimizer.param_groups:
            group["lr"] = cfg["lr"] * (cfg["lr_decay"] if epoch >= cfg["lr_decay_epoch"] else 1)
        for _ in range(cfg["steps_per_epoch"]):
            idx = torch.randperm(len(y), generator=generator)[:cfg["batch_size"]]
            logits = attacked(x[idx])
            if (logits.argmax(1) == y[idx]).float().mean() <= cfg["stop_acc"]:
                stopped = True
                break
            optimizer.zero_grad()
            nn.functional.cross_entropy(logits, y[idx]).backward()
            optimizer.step()
            with torch.no_grad():
                for p, (low, high) in zip(params, boxes):
                    p.copy_(torch.minimum(torch.maximum(p, low), high))
        if stopped:
            break
    idx = torch.randperm(len(y), generator=generator)[:max(1, round(cfg["subset"] * len(y)))]
    with torch.no_grad():
        return (attacked(x[idx]).argmax(1) == y[idx]).float().mean().item()


@pytest.mark.parametrize("kind", ["sigma", "alpha"])
@pytest.mark.parametrize("kernels_only", [False, True])
def test_probes_match_plain_reference_loops(trained, kind, kernels_only):
    model, x, y = trained
    cfg = {**S.DEFAULTS[kind], "subset": 0.5}
    cfg.update({"draws": 3} if kind == "sigma" else {"epochs": 2, "steps_per_epoch": 6, "batch_size": 40})
    # One evaluation batch per subset, so batch statistics come from the same samples.
    evaluator = S.Evaluator(x, y, None, batch_size=len(y))
    fast = S.sigma_probe if kind == "sigma" else S.alpha_probe
    plain = plain_sigma_accuracy if kind == "sigma" else plain_alpha_accuracy
    accuracies = []
    for m in ((0.4, 1.2) if kind == "sigma" else (0.05, 0.2)):
        got = fast(model, evaluator, kernels_only, cfg, torch.Generator().manual_seed(5))(m)["acc"]
        want = plain(model, x, y, kernels_only, cfg, torch.Generator().manual_seed(5), m)
        assert got == pytest.approx(want, abs=1e-6), (m, got, want)  # same draws, same result
        accuracies.append(got)
    assert min(accuracies) < 0.95  # the perturbations did bite


def test_run_sharpness_skips_a_model_whose_training_diverged(tmp_path):
    """A diverged model (metrics.json status) is not loaded: the JSON says why, with a
    null value for every requested measure, and is valid JSON."""
    metrics = tmp_path / "metrics.json"
    metrics.write_text(json.dumps({"status": "diverged", "reason": "training loss nan at epoch 1"}))
    out = tmp_path / "m.json"
    training = {"train_per_class": None, "data_seed": 0, "device": "cpu"}
    result = S.run_sharpness(tmp_path / "absent.pt", "unused.npz", out,
                             settings(measures=["sigma1", "alpha2"]), "fine", training,
                             metrics_path=metrics)
    written = json.loads(out.read_text())
    assert written == json.loads(json.dumps(result))
    assert written["status"] == "diverged" and written["reason"] == "training loss nan at epoch 1"
    assert set(written["measures"]) == {"sigma1", "alpha2"}
    assert all(m["value"] is None and m["at_bound"] is False for m in written["measures"].values())
    # an ok status loads the model (here: absent, so the job fails loudly)
    metrics.write_text(json.dumps({"status": "ok", "reason": None}))
    with pytest.raises(FileNotFoundError, match="absent.pt"):
        S.run_sharpness(tmp_path / "absent.pt", "unused.npz", out, settings(), "fine", training,
                        metrics_path=metrics)
    metrics.write_text("{broken")  # a corrupt metrics file is an error, not a skip
    with pytest.raises(ValueError, match="not valid JSON"):
        S.run_sharpness(tmp_path / "absent.pt", "unused.npz", out, settings(), "fine", training,
                        metrics_path=metrics)
