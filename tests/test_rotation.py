"""Layer rotation (intraclass.measures.rotation) against a numpy/scipy reference, with
cases where it must be high (independent or reversed kernels) and null (same direction)."""

from __future__ import annotations

import json
import math

import numpy as np
import pytest
import torch
from scipy.spatial.distance import cosine
from torch import nn

from intraclass.measures import registry
from intraclass.measures import rotation as R
from intraclass.models import build_model, save_checkpoint

VGG = {"arch": "vgg", "num_classes": 3, "in_channels": 1, "base_width": 2}
RESNET = {"arch": "resnet", "num_classes": 3, "in_channels": 1, "base_width": 2}


def reference_rotations(initial: dict, current: dict) -> list[float]:
    """Plain reference: every weight with more than one axis, in state_dict order, one
    scipy cosine distance on the flattened float64 arrays."""
    out = []
    for name, w0 in initial.items():
        if name.endswith("weight") and w0.ndim > 1:
            a = w0.numpy().astype(np.float64).ravel()
            b = current[name].numpy().astype(np.float64).ravel()
            out.append(cosine(a, b))
    return out


def model(spec, seed):
    torch.manual_seed(seed)
    return build_model(**spec)


# ---------------------------------------------------------------------------- kernels

def test_kernels_are_convolution_and_dense_weights_only():
    vgg = model(VGG, 0)
    names = R.kernel_names(vgg)
    assert len(names) == 8 + 1  # 2 convs x 4 stages + the dense layer (paper appendix A.2)
    assert names[-1] == "fc.weight" and all(n.endswith("conv.weight") for n in names[:-1])
    resnet = R.kernel_names(model(RESNET, 0))
    assert "stem.weight" in resnet and sum("shortcut" in n for n in resnet) == 3  # 1x1 convs
    assert not any("bn" in n or "bias" in n for n in resnet)


# ------------------------------------------------------------------ against the reference

@pytest.mark.parametrize("spec", [VGG, RESNET])
def test_rotations_match_scipy_on_random_networks(spec):
    initial, current = model(spec, 0).state_dict(), model(spec, 1).state_dict()
    names = R.kernel_names(model(spec, 0))
    got = R.layer_rotations(initial, current, names)
    assert got == pytest.approx(reference_rotations(initial, current), rel=1e-12, abs=1e-12)
    # high case: independent random kernels are near orthogonal, rotation ~ 1
    assert np.all(np.abs(got - 1.0) < 0.5) and abs(R.mean_rotation(got) - 1.0) < 0.1


def test_rotation_of_a_partly_trained_network_matches_scipy():
    """Structured case: a few SGD steps move some layers more than others."""
    net = model(VGG, 2)
    initial = {k: v.clone() for k, v in net.state_dict().items()}
    opt = torch.optim.SGD(net.parameters(), lr=0.5)
    x, y = torch.randn(16, 1, 8, 8), torch.randint(0, 3, (16,))
    for _ in range(5):
        opt.zero_grad()
        nn.functional.cross_entropy(net(x), y).backward()
        opt.step()
    got = R.layer_rotations(initial, net.state_dict(), R.kernel_names(net))
    want = reference_rotations(initial, net.state_dict())
    assert got == pytest.approx(want, rel=1e-10, abs=1e-12)
    assert np.all(got > 0) and np.all(got < 1)


# --------------------------------------------------------------------- null and extremes

def test_rotation_is_null_for_unchanged_or_rescaled_kernels_and_two_for_reversed():
    net = model(VGG, 3)
    names = R.kernel_names(net)
    state = net.state_dict()
    scaled = {k: 0.3 * v for k, v in state.items()}  # weight decay alone: no rotation
    reversed_ = {k: -v for k, v in state.items()}
    assert R.layer_rotations(state, state, names) == pytest.approx(0.0, abs=1e-12)
    assert R.layer_rotations(state, scaled, names) == pytest.approx(0.0, abs=1e-12)
    assert R.layer_rotations(state, reversed_, names) == pytest.approx(2.0, abs=1e-12)


def test_a_zero_kernel_has_no_angle_and_the_mean_skips_it():
    a = {"w": torch.ones(2, 2), "v": torch.ones(3, 1)}
    b = {"w": torch.zeros(2, 2), "v": -torch.ones(3, 1)}
    got = R.layer_rotations(a, b, ["w", "v"])
    assert math.isnan(got[0]) and got[1] == pytest.approx(2.0)
    assert R.mean_rotation(got) == pytest.approx(2.0)
    assert math.isnan(R.mean_rotation([math.nan]))
    with pytest.raises(KeyError, match=r"current weights lack kernel\(s\) \['u'\]"):
        R.layer_rotations({"u": torch.ones(2, 2)}, {}, ["u"])
    with pytest.raises(ValueError, match="kernel shapes differ"):
        R.cosine_distance(torch.ones(2, 2), torch.ones(4))


# ----------------------------------------------------------------------------- stage

def test_run_rotation_writes_every_checkpoint_curve(tmp_path):
    init, final, mid = model(VGG, 0), model(VGG, 1), model(VGG, 0)
    with torch.no_grad():  # halfway: rotate the first conv only
        mid.stages[0][0].conv.weight.mul_(-1)
    paths = {}
    for name, net, epoch in (("init", init, 0), ("model", final, 8), ("epoch3", mid, 3)):
        paths[name] = save_checkpoint(tmp_path / f"{name}.pt", net, VGG, {"id": "m"}, "coarse", epoch)
    out = tmp_path / "rotation" / "m.json"
    R.run_rotation(paths["init"], paths["model"], out, {"epoch3": paths["epoch3"]})
    written = json.loads(out.read_text())
    entry = written["measures"]["rotation"]
    want = reference_rotations(init.state_dict(), final.state_dict())
    assert entry["layers"] == pytest.approx(want, rel=1e-12)
    assert entry["value"] == pytest.approx(np.mean(want))
    assert written["layer_names"] == R.kernel_names(init)
    mid_curve = entry["checkpoints"]["epoch3"]
    assert mid_curve["epoch"] == 3 and entry["checkpoints"]["final"]["epoch"] == 8
    assert mid_curve["layers"] == pytest.approx([2.0] + [0.0] * 8, abs=1e-12)
    assert [p.name for p in out.parent.iterdir()] == ["m.json"]

    other = save_checkpoint(tmp_path / "other.pt", model(RESNET, 0), RESNET, {"id": "m"}, "coarse", 8)
    with pytest.raises(ValueError, match="holds architecture"):
        R.run_rotation(paths["init"], other, tmp_path / "bad.json")
    with pytest.raises(FileNotFoundError, match="missing.pt does not exist"):
        R.run_rotation(tmp_path / "missing.pt", paths["model"], tmp_path / "bad.json")
    assert not (tmp_path / "bad.json").exists()


def test_rotation_is_declared_in_the_registry():
    declared = registry.get(R.NAME)
    assert (declared.stage, declared.needs, declared.direction, declared.layerwise) == \
        ("rotation", "weights", 1, True)


def test_collect_turns_every_checkpoint_curve_into_layer_rows(tmp_path):
    """The rotation JSON through collect's generic reader: final and epoch curves become
    tidy scope=layer rows (the rotation figure and Figure 5 read them)."""
    from intraclass.tables import stage_layer_rows, stage_values

    paths = {name: save_checkpoint(tmp_path / f"{name}.pt", model(VGG, seed), VGG, {"id": "m"}, "coarse", epoch)
             for name, seed, epoch in (("init", 0, 0), ("model", 1, 8), ("epoch3", 2, 3))}
    result = R.run_rotation(paths["init"], paths["model"], tmp_path / "m.json", {"epoch3": paths["epoch3"]})
    tidy = stage_layer_rows(result, "rotation", "of model m")
    assert sorted(set(tidy["checkpoint"])) == ["epoch3", "final"]
    assert (tidy["measure"] == "rotation").all() and (tidy["scope"] == "layer").all()
    for checkpoint in ("final", "epoch3"):
        part = tidy[tidy["checkpoint"] == checkpoint]
        assert part["layer"].tolist() == list(range(9))
        curve = result["measures"]["rotation"]["checkpoints"][checkpoint]["layers"]
        assert part["value"].tolist() == pytest.approx(curve)
    assert stage_values(result, "rotation")["rotation"] == pytest.approx(result["measures"]["rotation"]["value"])
