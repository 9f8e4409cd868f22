"""c0, the black-box subclass measure (intraclass.measures.blackbox), against a plain
loop-and-numpy reference, with cases where it must be high and where it must be ~1."""

from __future__ import annotations

import json
import math

import numpy as np
import pytest
import torch
from torch import nn

from intraclass.measures import blackbox as B
from intraclass.measures import registry

FRACTIONS = B.DEFAULTS["fractions"]


# --------------------------------------------------------------------------- reference

def reference_pairs(fine, coarse, per_subclass, seed):
    """Steps 1-2 in plain Python: {subclass: (class, [(x1, x2) within], [(x1, x2) across])},
    the same random calls in the same order as the definition (one seeded generator)."""
    rng = np.random.default_rng(seed)
    out = {}
    for sub in sorted(set(fine.tolist())):
        members = [i for i in range(len(fine)) if fine[i] == sub]
        cls = coarse[members[0]]
        others = [i for i in range(len(fine)) if coarse[i] == cls and fine[i] != sub]
        if not others:
            continue
        if per_subclass is not None and len(members) > per_subclass:
            taken = list(rng.choice(np.array(members), per_subclass, replace=False))
        else:
            taken = members
        within = list(rng.permutation(np.array(taken)))
        across = list(rng.choice(np.array(others), len(taken), replace=len(others) < len(taken)))
        out[sub] = (cls, list(zip(taken, within)), list(zip(taken, across)))
    return out


def reference_c0(predict, x, fine, coarse, per_subclass=None, seed=0, fractions=FRACTIONS):
    """Steps 3-6 with one forward pass per interpolated sample; ``predict`` maps one
    float64 sample to its logits; 1 - p_S from a float64 softmax."""
    ratios = {}
    for sub, (cls, within, across) in reference_pairs(fine, coarse, per_subclass, seed).items():
        means = []
        for pairs in (within, across):
            scores = []
            for i, j in pairs:
                worst = -1.0
                for f in fractions:
                    z = np.asarray(predict(f * x[i] + (1 - f) * x[j]), dtype=np.float64)
                    p = np.exp(z - z.max()) / np.exp(z - z.max()).sum()
                    worst = max(worst, 1.0 - p[cls])
                scores.append(worst)
            means.append(sum(scores) / len(scores))
        ratios[sub] = means[1] / means[0]
    return float(np.median(list(ratios.values()))), ratios


def torch_predict(model, preprocess=None):
    def predict(sample):
        batch = torch.as_tensor(np.asarray(sample)[None], dtype=torch.float32)
        with torch.no_grad():
            return model(preprocess(batch) if preprocess else batch)[0].double().numpy()
    return predict


# --------------------------------------------------------------------------- data

def random_hierarchy(rng, classes=3, subs=(2, 3, 1), per_sub=(5, 30)):
    """fine/coarse labels of a random hierarchy; the last class has a single subclass."""
    fine, coarse, label = [], [], 0
    for c in range(classes):
        for _ in range(subs[c % len(subs)]):
            n = int(rng.integers(*per_sub))
            fine += [label] * n
            coarse += [c] * n
            label += 1
    order = rng.permutation(len(fine))
    return np.array(fine)[order], np.array(coarse)[order]


class Prototypes(nn.Module):
    """Logits = -scale * (distance to the nearest prototype of the class)^2 / 2."""

    def __init__(self, prototypes, scale=4.0):
        super().__init__()
        self.protos = [torch.tensor(p, dtype=torch.float32) for p in prototypes]  # (k_c, 2) each
        self.scale = scale
        self.dummy = nn.Parameter(torch.zeros(1))  # a device to read

    def forward(self, x):
        return torch.stack([-self.scale * torch.cdist(x, p).min(1).values ** 2 / 2 for p in self.protos], 1)


# ------------------------------------------------------------------------- pairs

def test_pairs_follow_the_definition():
    rng = np.random.default_rng(1)
    fine, coarse = random_hierarchy(rng)
    pairs = B.draw_pairs(fine, coarse, 7, np.random.default_rng(3))
    single = {f for f in set(fine.tolist()) if len(set(fine[coarse == coarse[fine == f][0]])) == 1}
    assert set(pairs.subclass.tolist()) == set(fine.tolist()) - single  # lone subclasses left out
    for sub in set(pairs.subclass.tolist()):
        mine = pairs.subclass == sub
        within, across = mine & ~pairs.across, mine & pairs.across
        assert within.sum() == across.sum() == min(7, (fine == sub).sum())
        assert np.all(fine[pairs.first[mine]] == sub)
        assert np.array_equal(np.sort(pairs.first[within]), np.sort(pairs.second[within]))  # a shuffle
        assert len(set(pairs.first[within].tolist())) == within.sum()  # distinct samples
        assert np.all(fine[pairs.second[across]] != sub)
        assert np.all(coarse[pairs.second[across]] == coarse[pairs.first[across]])
        assert np.all(pairs.target[mine] == coarse[pairs.first[mine]])


def test_pairs_are_seeded_and_match_the_reference_draws():
    fine, coarse = random_hierarchy(np.random.default_rng(2))
    a = B.draw_pairs(fine, coarse, 6, np.random.default_rng(5))
    b = B.draw_pairs(fine, coarse, 6, np.random.default_rng(5))
    c = B.draw_pairs(fine, coarse, 6, np.random.default_rng(6))
    assert all(np.array_equal(getattr(a, f), getattr(b, f)) for f in ("first", "second", "across"))
    assert not np.array_equal(a.second, c.second)
    for sub, (_cls, within, across) in reference_pairs(fine, coarse, 6, 5).items():
        mine = a.subclass == sub
        got = list(zip(a.first[mine].tolist(), a.second[mine].tolist()))
        assert got == [(int(i), int(j)) for i, j in within + across]


def test_pairs_reject_a_subclass_in_two_classes():
    with pytest.raises(ValueError, match="subclass 1 belongs to several classes"):
        B.draw_pairs(np.array([0, 1, 1, 2]), np.array([0, 0, 1, 1]), None, np.random.default_rng(0))


# ----------------------------------------------------------------- against the reference

@pytest.mark.parametrize("seed", [0, 1])
def test_c0_matches_the_reference_on_a_random_network(seed):
    rng = np.random.default_rng(seed)
    fine, coarse = random_hierarchy(rng)
    x = rng.normal(size=(len(fine), 5)).astype(np.float32)
    torch.manual_seed(seed)
    model = nn.Sequential(nn.Linear(5, 16), nn.ReLU(), nn.Linear(16, 3)).eval()
    settings = {"seed": seed, "per_subclass": 8}
    got = B.compute_c0(model, torch.from_numpy(x), fine, coarse, settings, batch_size=20)
    want, ratios = reference_c0(torch_predict(model), x.astype(np.float64), fine, coarse, 8, seed)
    assert got["measures"]["c0"]["value"] == pytest.approx(want, rel=1e-5)
    by_sub = {e["subclass"]: e["ratio"] for e in got["measures"]["c0"]["subclasses"]}
    assert by_sub == pytest.approx(ratios, rel=1e-5)
    # the batch size does not change the value
    other = B.c0(model, torch.from_numpy(x), fine, coarse, settings, batch_size=7)
    assert other == pytest.approx(got["measures"]["c0"]["value"], rel=1e-6)


def test_c0_of_the_paper_network_on_images_interpolates_in_the_normalized_space():
    """uint8 images through the training normalization equal interpolation of the
    normalized images (the normalization is affine), on a VGG of the project."""
    from intraclass.augment import Normalizer
    from intraclass.models import build_model

    rng = np.random.default_rng(4)
    fine, coarse = random_hierarchy(rng, classes=2, subs=(2, 2), per_sub=(3, 6))
    images = rng.integers(0, 256, size=(len(fine), 8, 8, 1), dtype=np.uint8)
    torch.manual_seed(0)
    model = build_model("vgg", num_classes=2, in_channels=1, base_width=2).eval()
    normalize = Normalizer(np.array([0.4]), np.array([0.3]), torch.device("cpu"), contiguous=True)
    got = B.c0(model, torch.from_numpy(images), fine, coarse, {"per_subclass": 4},
               batch_size=50, preprocess=normalize)
    normalized = normalize(torch.from_numpy(images)).double().numpy()  # (N, 1, 8, 8)
    want, _ = reference_c0(torch_predict(model), normalized, fine, coarse, 4, 0)
    assert got == pytest.approx(want, rel=1e-4)


# --------------------------------------------------------------- high and null cases

def blobs(centers, n, spread, rng):
    return np.concatenate([c + spread * rng.normal(size=(n, 2)) for c in centers]).astype(np.float32)


def test_c0_is_high_when_the_class_region_is_two_separate_subclass_clusters():
    """Class 0 = subclasses at (-3, 0) and (3, 0), class 1 at (0, -3) and (0, 3), and a
    third class at the origin between them: across-subclass segments leave the class."""
    rng = np.random.default_rng(0)
    centers = [(-3, 0), (3, 0), (0, -3), (0, 3), (0, 0)]
    x = blobs(centers, 40, 0.3, rng)
    fine = np.repeat(np.arange(5), 40)
    coarse = np.array([0, 0, 1, 1, 2])[fine]
    model = Prototypes([[(-3, 0), (3, 0)], [(0, -3), (0, 3)], [(0, 0)]])
    result = B.compute_c0(model, torch.from_numpy(x), fine, coarse, {"per_subclass": 30})
    entry = result["measures"]["c0"]
    assert [e["subclass"] for e in entry["subclasses"]] == [0, 1, 2, 3]  # class 2 has one subclass
    assert all(e["between"] > 0.9 for e in entry["subclasses"])  # the path crosses class 2
    assert entry["value"] > 100
    want, _ = reference_c0(torch_predict(model), x.astype(np.float64), fine, coarse, 30, 0)
    assert entry["value"] == pytest.approx(want, rel=1e-3)


def test_c0_is_near_one_when_subclasses_are_random_splits_of_a_class():
    rng = np.random.default_rng(1)
    x = blobs([(-2, 0), (2, 0)], 400, 1.0, rng)
    coarse = np.repeat([0, 1], 400)
    fine = 2 * coarse + rng.integers(0, 2, size=800)  # two random "subclasses" per class
    model = Prototypes([[(-2, 0)], [(2, 0)]], scale=1.0)
    value = B.c0(model, torch.from_numpy(x), fine, coarse, {"per_subclass": None})
    assert abs(value - 1.0) < 0.2


def test_c0_is_exactly_one_for_a_model_that_ignores_its_input():
    class Constant(nn.Module):
        def __init__(self):
            super().__init__()
            self.z = nn.Parameter(torch.tensor([0.5, -0.2, 0.1]))

        def forward(self, x):
            return self.z.expand(x.shape[0], 3)

    fine, coarse = random_hierarchy(np.random.default_rng(3))
    x = torch.randn(len(fine), 4)
    assert B.c0(Constant(), x, fine, coarse) == pytest.approx(1.0, rel=1e-12)


def test_confident_models_keep_precision_where_p_is_one_in_float32():
    """Logits 40 apart: 1 - p_S ~ 4e-18 underflows as 1 - p in float32; the logsumexp form
    keeps it (the ratio stays defined and equals the reference's float64 value)."""
    logits = torch.tensor([[40.0, 0.0], [38.0, 0.0], [0.0, 1.0]])
    got = B.log_not_class(logits, torch.tensor([0, 0, 1])).double().exp().numpy()
    want = [1 / (1 + math.exp(40)), 1 / (1 + math.exp(38)), 1 - 1 / (1 + math.exp(-1))]
    assert got == pytest.approx(want, rel=1e-5)


# --------------------------------------------------------------- settings and stage

def test_settings_are_checked_and_name_the_key():
    assert B.resolve_settings({"enabled": True})["fractions"] == FRACTIONS
    with pytest.raises(ValueError, match="blackbox: unknown key 'perclass'"):
        B.resolve_settings({"perclass": 3})
    with pytest.raises(ValueError, match="blackbox.per_subclass"):
        B.resolve_settings({"per_subclass": 0})
    with pytest.raises(ValueError, match="blackbox.fractions"):
        B.resolve_settings({"fractions": [0.5, 1.5]})
    with pytest.raises(ValueError, match="at least two subclasses"):
        B.compute_c0(nn.Linear(2, 2), torch.zeros(3, 2), np.array([0, 1, 2]), np.array([0, 1, 2]))


def test_the_model_modes_are_restored():
    model = nn.Sequential(nn.Linear(2, 4), nn.Dropout(0.5), nn.Linear(4, 2)).train()
    fine, coarse = np.array([0, 0, 1, 1]), np.array([0, 0, 0, 0])
    B.c0(model, torch.randn(4, 2), fine, coarse)
    assert all(m.training for m in model.modules())


def test_run_blackbox_writes_the_stage_json(tmp_path):
    from intraclass.data import save_dataset
    from intraclass.data.toy import make_synthetic
    from intraclass.models import build_model, save_checkpoint

    dataset = make_synthetic(seed=0, n_super=2, n_sub=2, per_class=8, test_per_class=2)
    data = tmp_path / "synthetic.npz"
    save_dataset(dataset, data)
    arch = {"arch": "vgg", "num_classes": 2, "in_channels": 1, "base_width": 2}
    torch.manual_seed(0)
    ckpt = save_checkpoint(tmp_path / "model.pt", build_model(**arch), arch, {"id": "m"}, "coarse", 1,
                           normalization={"mean": [0.5], "std": [0.25]})
    training = {"train_per_class": 6, "data_seed": 0, "device": "cpu", "eval_batch_size": 64}
    out = tmp_path / "blackbox" / "m.json"
    result = B.run_blackbox(ckpt, data, out, {"per_subclass": 3}, "coarse", training)
    written = json.loads(out.read_text())
    entry = written["measures"]["c0"]
    assert entry["value"] == pytest.approx(result["measures"]["c0"]["value"]) and entry["value"] > 0
    assert [e["name"] for e in entry["subclasses"]] == dataset.fine_names
    assert all(e["pairs"] == 3 for e in entry["subclasses"])
    assert written["settings"]["per_subclass"] == 3 and written["n_pairs"] == 4 * 3 * 2
    assert [p.name for p in out.parent.iterdir()] == ["m.json"]  # no temporary left behind
    with pytest.raises(ValueError, match="labels: coarse"):
        B.run_blackbox(ckpt, data, out, {}, "fine", training)
    with pytest.raises(KeyError, match="eval_batch_size"):
        B.run_blackbox(ckpt, data, out, {}, "coarse", {"train_per_class": 6, "data_seed": 0, "device": "cpu"})


def test_c0_is_declared_in_the_registry():
    declared = registry.get(B.NAME)
    assert (declared.stage, declared.needs, declared.direction) == ("blackbox", "model+data", 1)
