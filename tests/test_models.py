"""Architectures of the paper (appendix A.2), their measured sites, and checkpoint round trips.

The ViT, the normalization variants and the protocol's references: tests/test_architectures.py."""

import numpy as np
import pytest
import torch
from torch import nn

from intraclass.archspec import NORMS, site_widths
from intraclass.models import (
    ConvNormReLU,
    build_model,
    count_neurons,
    load_checkpoint,
    measured_sites,
    read_checkpoint,
    save_checkpoint,
)

# The paper's neuron totals (paper Fig. 4 caption; docs/training.md, "Architectures").
PAPER_TOTALS = [
    ("vgg", 1.0, 1.0, 960), ("vgg", 1.5, 1.0, 1440), ("vgg", 1.0, 1.5, 1440),
    ("resnet", 1.0, 1.0, 1920), ("resnet", 1.5, 1.0, 2880), ("resnet", 1.0, 1.5, 2880),
]


def _count_layers(model: nn.Module) -> int:
    """Conv3x3 and dense layers (1x1 shortcut projections are not counted, as in ResNets)."""
    return sum(isinstance(m, nn.Linear) or (isinstance(m, nn.Conv2d) and m.kernel_size == (3, 3))
               for m in model.modules())


@pytest.mark.parametrize("arch,width,depth,total", PAPER_TOTALS)
def test_neuron_totals_match_paper(arch, width, depth, total):
    """Through the protocol: the declared sites' widths, and the config check's widths."""
    model = build_model(arch, num_classes=10, in_channels=3, width=width, depth=depth)
    assert count_neurons(model) == total
    assert sum(site.width for site in measured_sites(model)) == total
    assert sum(site_widths(arch, width, depth, 32)) == total
    assert all(site.reduction == "space" and site.name.endswith(".bn") for site in measured_sites(model))


@pytest.mark.parametrize("norm", NORMS)
@pytest.mark.parametrize("arch,width,depth,total", PAPER_TOTALS)
def test_every_norm_keeps_the_paper_totals(arch, width, depth, total, norm):
    assert sum(site_widths({"name": arch, "norm": norm}, width, depth)) == total
    if (width, depth) == (1.0, 1.0):  # building is slow at paper widths: once per norm
        assert count_neurons(build_model(arch, 10, 3, norm=norm)) == total


def test_paper_models_keep_their_site_names_and_state_dict_keys():
    """Checkpoints and stores of the first release: same module paths, same keys."""
    vgg = build_model("vgg", 10, 3, base_width=4)
    assert [s.name for s in measured_sites(vgg)][:3] == ["stages.0.0.bn", "stages.0.1.bn", "stages.1.0.bn"]
    assert list(vgg.state_dict())[:7] == [
        "stages.0.0.conv.weight", "stages.0.0.bn.weight", "stages.0.0.bn.bias",
        "stages.0.0.bn.running_mean", "stages.0.0.bn.running_var", "stages.0.0.bn.num_batches_tracked",
        "stages.0.1.conv.weight"]
    resnet = build_model("resnet", 10, 3, base_width=4)
    assert [s.name for s in measured_sites(resnet)][:2] == ["stages.0.0.unit1.bn", "stages.0.0.unit2.bn"]
    assert "stages.1.0.shortcut.weight" in resnet.state_dict()


@pytest.mark.parametrize("arch,depth,layers", [("vgg", 1.0, 9), ("vgg", 1.5, 13),
                                                ("resnet", 1.0, 18), ("resnet", 1.5, 26)])
def test_layer_counts_match_paper(arch, depth, layers):
    assert _count_layers(build_model(arch, 10, 3, depth=depth)) == layers


@pytest.mark.parametrize("arch,per_stage", [("vgg", 2), ("resnet", 4)])
@pytest.mark.parametrize("base_width", [4, 8, 16])
def test_totals_scale_with_base_width(arch, per_stage, base_width):
    model = build_model(arch, 10, 1, base_width=base_width)
    assert count_neurons(model) == per_stage * base_width * (1 + 2 + 4 + 8)
    widths = [site.width for site in measured_sites(model)]
    assert widths == [site.module.num_features for site in measured_sites(model)]
    stage_of = [w // base_width for w in widths]  # 1, 2, 4, 8: non-decreasing in forward order
    assert stage_of == sorted(stage_of)
    assert all(stage_of.count(s) == per_stage for s in (1, 2, 4, 8))


@pytest.mark.parametrize("arch", ["vgg", "resnet"])
@pytest.mark.parametrize("shape", [(1, 28, 28), (3, 32, 32), (1, 8, 8), (2, 5, 7)])
def test_any_input_shape(arch, shape):
    model = build_model(arch, num_classes=7, in_channels=shape[0], base_width=4, dropout=0.2)
    out = model(torch.randn(3, *shape))
    assert out.shape == (3, 7)
    assert torch.isfinite(out).all()


@pytest.mark.parametrize("arch", ["vgg", "resnet"])
def test_sites_in_forward_order_and_feed_relu(arch):
    """Hooks record the BN outputs and ReLU inputs in call order: they must pair up."""
    model = build_model(arch, 5, 3, base_width=4, depth=1.5).eval()
    sites = [(site.name, site.module) for site in measured_sites(model)]
    calls = []
    handles = []
    for module_name, module in model.named_modules():
        if isinstance(module, nn.BatchNorm2d):
            handles.append(module.register_forward_hook(
                lambda m, i, o, n=module_name: calls.append(("bn", n, o))))
        if isinstance(module, nn.ReLU):
            handles.append(module.register_forward_hook(
                lambda m, i, o, n=module_name: calls.append(("relu", n, i[0]))))
    model(torch.randn(2, 3, 16, 16))
    for h in handles:
        h.remove()
    bn_calls = [c for c in calls if c[0] == "bn"]
    assert [n for _, n, _ in bn_calls] == [name for name, _ in sites]
    # every BN call is immediately followed by a ReLU call on the identical tensor
    for i, call in enumerate(calls):
        if call[0] == "bn":
            nxt = calls[i + 1]
            assert nxt[0] == "relu" and torch.equal(nxt[2], call[2])
    assert len(sites) == sum(isinstance(m, ConvNormReLU) for m in model.modules())


def test_pre_activations_survive_relu():
    """Non in-place ReLU: the stored BN output keeps its negative values."""
    model = build_model("vgg", 3, 1, base_width=4).eval()
    bn = measured_sites(model)[0].module
    seen = []
    bn.register_forward_hook(lambda m, i, o: seen.append(o))
    model(torch.randn(4, 1, 8, 8))
    assert (seen[0] < 0).any()


def test_bad_arguments_are_named():
    with pytest.raises(ValueError, match="arch"):
        build_model("alexnet", 10, 3)
    with pytest.raises(ValueError, match="dropout"):
        build_model("vgg", 10, 3, dropout=1.0)
    with pytest.raises(ValueError, match="depth"):
        build_model("vgg", 10, 3, depth=0.1)


def test_checkpoint_round_trip(tmp_path):
    spec = dict(arch="resnet", num_classes=4, in_channels=1, width=1.5, depth=1.0,
                base_width=4, dropout=0.2)
    model = build_model(**spec)
    model(torch.randn(8, 1, 8, 8))  # moves the BN running statistics off their init

    hparams = {"id": "m", "lr": np.float64(0.1), "batch_size": np.int64(100), "augment": True}
    path = save_checkpoint(tmp_path / "sub" / "model.pt", model, spec, hparams, "coarse", 7,
                           note="x")
    assert not list(path.parent.glob(".*partial*"))
    raw = torch.load(path, weights_only=True)
    assert raw["hparams"] == {"id": "m", "lr": 0.1, "batch_size": 100, "augment": True}
    loaded, ckpt = load_checkpoint(path)
    assert ckpt["arch_spec"] == spec and ckpt["labels"] == "coarse" and ckpt["epoch"] == 7
    assert ckpt["note"] == "x"
    assert not loaded.training
    for (k, a), b in zip(model.state_dict().items(), loaded.state_dict().values()):
        assert torch.equal(a, b), k
    x = torch.randn(3, 1, 8, 8)
    model.eval()
    assert torch.equal(model(x), loaded(x))


def test_checkpoint_errors_name_the_file(tmp_path):
    with pytest.raises(FileNotFoundError, match="nope.pt"):
        load_checkpoint(tmp_path / "nope.pt")
    bad = tmp_path / "bad.pt"
    bad.write_bytes(b"not a checkpoint")
    with pytest.raises(ValueError, match="bad.pt"):
        load_checkpoint(bad)
    partial = tmp_path / "partial.pt"
    torch.save({"state_dict": {}}, partial)
    with pytest.raises(ValueError, match="arch_spec"):
        read_checkpoint(partial)
    with pytest.raises(TypeError, match="hparams.f"):
        save_checkpoint(tmp_path / "x.pt", build_model("vgg", 2, 1, base_width=2),
                        {}, {"f": object()}, "fine", 0)
    assert not (tmp_path / "x.pt").exists()
    path = save_checkpoint(tmp_path / "fine.pt", build_model("vgg", 2, 1, base_width=2), {
        "arch": "vgg", "num_classes": 2, "in_channels": 1, "base_width": 2}, {}, "fine", 0)
    with pytest.raises(ValueError, match=r"fine.pt was trained on 'fine' labels, but the rule asks for 'coarse'"):
        load_checkpoint(path, labels="coarse")
    assert load_checkpoint(path, labels="fine")[1]["labels"] == "fine"
