"""The architecture protocol (measured sites, kernels), the ViT and the CNN normalization
variants: sizes, declarations against plain references, and each variant end to end at the
function level (extract -> measures, sharpness, layer rotation)."""

import math
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
import yaml
from torch import nn

from intraclass.archspec import (
    NORMS,
    MeasuredSite,
    arch_spec,
    check_options,
    reduce_output,
    site_widths,
    vit_sizes,
)
from intraclass.models import (
    build_model,
    count_neurons,
    kernel_parameters,
    load_checkpoint,
    make_norm,
    measured_sites,
    save_checkpoint,
)
from intraclass.vit import sincos_position_code

TINY_VIT = {"name": "vit", "base_width": 8, "patch": 4, "blocks": 2, "heads": 2}
VARIANTS = [{"name": cnn, "base_width": 2, "norm": norm} for cnn in ("vgg", "resnet") for norm in NORMS]
VARIANTS.append(TINY_VIT)
IDS = [f"{a['name']}-{a.get('norm', 'ln')}" for a in VARIANTS]


def build(arch: dict, width=1.0, depth=1.0, num_classes=4, in_channels=1, dropout=0.0, seed=0):
    torch.manual_seed(seed)
    spec = arch_spec(arch, num_classes=num_classes, in_channels=in_channels, width=width,
                     depth=depth, dropout=dropout)
    return build_model(**spec), spec


# ------------------------------------------------------------------ specs and sizes

def test_arch_spec_of_the_paper_models_is_the_first_releases_dict():
    """No norm key for batch norm: checkpoints, fingerprints and reruns stay the same."""
    legacy = dict(arch="vgg", num_classes=10, in_channels=3, width=1.5, depth=1.0, base_width=32,
                  dropout=0.2)
    for arch in ({"name": "vgg", "base_width": 32}, {"name": "vgg", "base_width": 32, "norm": "batch"}):
        assert arch_spec(arch, num_classes=10, in_channels=3, width=1.5, depth=1, dropout=0.2) == legacy
    grouped = arch_spec({"name": "resnet", "norm": "group"}, num_classes=2, in_channels=1,
                        width=1, depth=1, dropout=0)
    assert grouped["norm"] == "group" and grouped["base_width"] == 32
    vit = arch_spec({"name": "vit", "heads": 2}, num_classes=2, in_channels=1, width=1, depth=1,
                    dropout=0)
    assert {k: vit[k] for k in ("patch", "blocks", "heads", "mlp_ratio")} == \
        {"patch": 4, "blocks": 4, "heads": 2, "mlp_ratio": 4}


def test_options_of_another_architecture_are_refused_with_their_names():
    with pytest.raises(ValueError, match=r"'vgg' takes no option\(s\) \['patch'\]"):
        check_options("vgg", {"patch": 4})
    with pytest.raises(ValueError, match=r"'vit' takes no option\(s\) \['norm'\]"):
        check_options("vit", {"norm": "layer"})
    with pytest.raises(ValueError, match="norm must be one of"):
        build_model("resnet", 3, 1, base_width=2, norm="instance")
    with pytest.raises(ValueError, match="heads"):
        build_model("vit", 3, 1, base_width=8, heads=3)
    with pytest.raises(ValueError, match="integers >= 1"):
        check_options("vit", {"patch": 0})
    with pytest.raises(ValueError, match="arch must be one of"):
        arch_spec({"name": "alexnet"}, num_classes=2, in_channels=1, width=1, depth=1, dropout=0)


@pytest.mark.parametrize("width, depth, dim, blocks", [(1, 1, 32, 4), (1.5, 1, 48, 4), (1, 1.5, 32, 6),
                                                       (2, 0.5, 64, 2)])
def test_vit_width_scales_embedding_and_mlp_depth_scales_blocks(width, depth, dim, blocks):
    assert vit_sizes(width, depth, 32, 4, 4, 4) == (dim, blocks, 4 * dim)
    model, _ = build({"name": "vit"}, width=width, depth=depth)
    assert len(model.blocks) == blocks and model.norm.normalized_shape == (dim,)
    assert [s.width for s in measured_sites(model)] == [4 * dim] * blocks


@pytest.mark.parametrize("arch", VARIANTS, ids=IDS)
@pytest.mark.parametrize("width, depth", [(1, 1), (1.5, 1), (1, 1.5)])
def test_declared_widths_are_the_config_checks_widths_and_the_outputs(arch, width, depth):
    from intraclass.activations import SiteRecorder

    model, _ = build(arch, width, depth)
    sites = measured_sites(model)
    assert [s.width for s in sites] == site_widths(arch, width, depth)
    assert len({s.name for s in sites}) == len(sites)
    assert all(dict(model.named_modules())[s.name] is s.module for s in sites)
    with SiteRecorder(sites) as recorder, torch.inference_mode():
        model.eval()(torch.randn(3, 1, 12, 12))
        assert [tuple(t.shape) for t in recorder.pop()] == [(3, s.width) for s in sites]


@pytest.mark.parametrize("norm", NORMS)
@pytest.mark.parametrize("arch, per_stage", [("vgg", 2), ("resnet", 4)])
def test_site_names_and_totals_of_every_norm(norm, arch, per_stage):
    model, _ = build({"name": arch, "base_width": 4, "norm": norm})
    suffix = {"batch": ".bn", "layer": ".norm", "group": ".norm", "none": ".conv"}[norm]
    names = [s.name for s in measured_sites(model)]
    assert all(n.startswith("stages.") and n.endswith(suffix) for n in names)
    assert count_neurons(model) == per_stage * 4 * (1 + 2 + 4 + 8)
    # biases only where there is no normalization to absorb them
    convs = [m for m in model.stages.modules() if isinstance(m, nn.Conv2d) and m.kernel_size == (3, 3)]
    assert all((c.bias is not None) == (norm == "none") for c in convs)


# --------------------------------------------------------------- plain references

def test_reduce_output_against_numpy():
    rng = np.random.default_rng(0)
    maps, tokens = rng.normal(size=(3, 5, 4, 6)), rng.normal(size=(3, 7, 5))
    np.testing.assert_array_equal(reduce_output(torch.from_numpy(maps), "space").numpy(),
                                  maps.max(axis=(2, 3)))
    np.testing.assert_array_equal(reduce_output(torch.from_numpy(tokens), "tokens").numpy(),
                                  tokens.max(axis=1))
    with pytest.raises(ValueError, match="reduction"):
        MeasuredSite("x", 3, "mean")
    with pytest.raises(ValueError, match=r"\(N, T, C\)"):
        reduce_output(torch.from_numpy(maps), "tokens")


def _plain_group_norm(x: np.ndarray, groups: int, weight: np.ndarray, bias: np.ndarray) -> np.ndarray:
    """Loop reference: each sample's channels in ``groups`` consecutive groups, each group
    standardized over its channels and space (population variance, eps 1e-5), then the
    per-channel affine."""
    out = np.empty_like(x)
    size = x.shape[1] // groups
    for n in range(x.shape[0]):
        for g in range(groups):
            part = x[n, g * size:(g + 1) * size]
            out[n, g * size:(g + 1) * size] = (part - part.mean()) / np.sqrt(part.var() + 1e-5)
    return out * weight[None, :, None, None] + bias[None, :, None, None]


@pytest.mark.parametrize("norm, channels, groups", [("layer", 6, 1), ("layer", 48, 1), ("group", 64, 32),
                                                    ("group", 48, 16), ("group", 6, 2)])
def test_layer_and_group_norm_match_the_plain_formula(norm, channels, groups):
    layer = make_norm(norm, channels)
    rng = np.random.default_rng(channels)
    with torch.no_grad():
        layer.weight.copy_(torch.from_numpy(rng.normal(size=channels)))
        layer.bias.copy_(torch.from_numpy(rng.normal(size=channels)))
    x = rng.normal(2.0, 3.0, size=(3, channels, 5, 4))
    expected = _plain_group_norm(x, groups, layer.weight.detach().numpy(), layer.bias.detach().numpy())
    got = layer(torch.from_numpy(x).float()).detach().numpy()
    np.testing.assert_allclose(got, expected, rtol=1e-4, atol=1e-4)
    assert math.gcd(channels, 32) == groups or norm == "layer"


def _plain_position_code(rows: int, cols: int, dim: int) -> np.ndarray:
    quarter = dim // 4
    code = np.zeros((rows * cols, dim))
    for r in range(rows):
        for c in range(cols):
            for i in range(quarter):
                omega = 10000.0 ** (-i / max(quarter - 1, 1))
                t = r * cols + c
                code[t, i], code[t, quarter + i] = math.sin(c * omega), math.cos(c * omega)
                code[t, 2 * quarter + i], code[t, 3 * quarter + i] = math.sin(r * omega), math.cos(r * omega)
    return code


@pytest.mark.parametrize("rows, cols, dim", [(2, 3, 8), (4, 4, 16), (1, 1, 4), (3, 2, 12)])
def test_position_code_against_a_loop(rows, cols, dim):
    got = sincos_position_code(rows, cols, dim, torch.device("cpu")).numpy()
    np.testing.assert_allclose(got, _plain_position_code(rows, cols, dim), rtol=1e-5, atol=1e-5)


def test_vit_forward_any_input_and_border_kept():
    model, _ = build(TINY_VIT, in_channels=3, dropout=0.1)
    for shape in [(3, 28, 28), (3, 32, 32), (3, 8, 8), (3, 5, 7), (3, 30, 30)]:
        out = model.eval()(torch.randn(2, *shape))
        assert out.shape == (2, 4) and torch.isfinite(out).all()
    tokens = []
    model.blocks[0].mlp.fc1.register_forward_hook(lambda m, i, o: tokens.append(o.shape))
    x = torch.randn(1, 3, 30, 30)
    before = model(x)
    x[0, :, 29, 29] += 5.0  # last row and column: a padded 4x4 patch still sees them
    assert not torch.equal(before, model(x))
    assert tokens[0] == (1, 64, 32)  # ceil(30 / 4)^2 tokens of hidden width mlp_ratio 4 x dim 8


@pytest.mark.parametrize("arch", VARIANTS, ids=IDS)
def test_sites_feed_their_nonlinearity_unchanged(arch):
    """Hooks record site outputs and nonlinearity inputs in call order: each site's output is
    the very tensor the next ReLU/GELU gets, and every nonlinearity is fed by a site."""
    model, _ = build(arch, depth=1.5)
    sites = measured_sites(model)
    calls, handles = [], []
    for site in sites:
        handles.append(site.module.register_forward_hook(
            lambda m, i, o, n=site.name: calls.append(("site", n, o))))
    for module in model.modules():
        if isinstance(module, (nn.ReLU, nn.GELU)):
            handles.append(module.register_forward_hook(lambda m, i, o: calls.append(("act", "", i[0]))))
    with torch.no_grad():
        model.eval()(torch.randn(2, 1, 12, 12))
    for h in handles:
        h.remove()
    assert [n for kind, n, _ in calls if kind == "site"] == [s.name for s in sites]
    assert sum(kind == "act" for kind, _, _ in calls) == len(sites)
    for i, (kind, _, tensor) in enumerate(calls):
        if kind == "site":
            assert calls[i + 1][0] == "act" and torch.equal(calls[i + 1][2], tensor)
            assert (tensor < 0).any()  # pre-activations keep their negative values


def test_kernels_are_declared():
    for arch in VARIANTS[:-1]:  # CNNs: every tensor with more than one dimension, in order
        model, _ = build(arch)
        assert [id(p) for p in kernel_parameters(model)] == [id(p) for p in model.parameters() if p.ndim > 1]
    vit, _ = build(TINY_VIT)
    expected = [m.weight for m in vit.modules() if type(m) in (nn.Linear, nn.Conv2d)]
    kernels = kernel_parameters(vit)
    assert [id(p) for p in kernels] == [id(p) for p in expected]
    # per block qkv, proj, fc1, fc2; plus the patch convolution and the head
    assert len(kernels) == 4 * len(vit.blocks) + 2
    names = {id(p): n for n, p in vit.named_parameters()}
    assert not any("norm" in names[id(p)] or names[id(p)].endswith("bias") for p in kernels)
    # a model without a declaration: tensors with more than one dimension
    plain = nn.Sequential(nn.Linear(3, 4), nn.LayerNorm(4), nn.Linear(4, 2))
    assert [p.shape for p in kernel_parameters(plain)] == [(4, 3), (2, 4)]
    with pytest.raises(TypeError, match="does not declare its measured sites"):
        measured_sites(plain)


def test_rotation_and_sharpness_use_the_declared_kernels():
    from intraclass.measures.rotation import kernel_names
    from intraclass.sharpness import perturbed_parameters

    vit, _ = build(TINY_VIT)
    declared = kernel_parameters(vit)
    assert perturbed_parameters(vit, kernels_only=True) == declared
    names = dict(vit.named_parameters())
    assert [names[n] for n in kernel_names(vit)] == declared
    assert len(perturbed_parameters(vit, kernels_only=False)) == len(list(vit.parameters()))


@pytest.mark.parametrize("arch", VARIANTS, ids=IDS)
def test_batch_statistics_mode_changes_batch_norm_only(arch):
    """sharpness's '' variants: layer/group norm and no norm run the same in both modes."""
    from intraclass.sharpness import forward_mode

    model, _ = build(arch)
    model.train()
    with torch.no_grad():
        model(torch.randn(16, 1, 12, 12) * 3 + 1)  # running statistics away from their init
    x = torch.randn(8, 1, 12, 12)
    with torch.no_grad(), forward_mode(model, batch_stats=False):
        stored = model(x)
    with torch.no_grad(), forward_mode(model, batch_stats=True):
        batch = model(x)
    assert torch.equal(stored, batch) == (arch.get("norm") != "batch")
    assert model.training


# ----------------------------------------------------------------- end to end

@pytest.fixture(scope="module")
def dataset():
    from intraclass.data.toy import make_synthetic

    return make_synthetic(seed=0, n_super=2, n_sub=2, per_class=12, test_per_class=5, size=8)


def _normalization(dataset) -> dict:
    x = dataset.x_train / 255.0
    return {"mean": x.mean(axis=(0, 1, 2)).tolist(), "std": x.std(axis=(0, 1, 2)).tolist()}


TINY_SHARPNESS = {"eval_batch_size": 16, "sigma": {"draws": 1, "max_steps": 2},
                  "alpha": {"epochs": 1, "steps_per_epoch": 1, "batch_size": 8, "max_steps": 2}}
TINY_MEASURES = {"k": {"c1": 3, "c2": 1, "c3": 3, "c4": 1, "bimodality": 3},
                 "k_sweep": {"c1": 5, "c3": 10}, "layer_k": 2}


@pytest.mark.parametrize("arch", VARIANTS, ids=IDS)
def test_variant_extracts_measures_and_runs_sharpness_and_rotation(arch, dataset, tmp_path):
    from intraclass.activations import SiteRecorder, extract_checkpoint, open_store
    from intraclass.data import save_dataset
    from intraclass.measures import MeasureSettings
    from intraclass.measures.rotation import kernel_names, run_rotation
    from intraclass.measures.table import store_measures
    from intraclass.sharpness import compute_sharpness

    data = save_dataset(dataset, tmp_path / "toy.npz")
    initial, spec = build(arch, num_classes=2, dropout=0.1, seed=0)
    trained, _ = build(arch, num_classes=2, dropout=0.1, seed=1)  # stands in for training
    norm = _normalization(dataset)
    save_checkpoint(tmp_path / "init.pt", initial, spec, {"id": "m"}, "coarse", 0, normalization=norm)
    save_checkpoint(tmp_path / "model.pt", trained, spec, {"id": "m"}, "coarse", 2, normalization=norm)
    model, ckpt = load_checkpoint(tmp_path / "model.pt")
    assert ckpt["arch_spec"] == spec

    store = open_store(extract_checkpoint(
        tmp_path / "model.pt", data, tmp_path / "final.zarr", checkpoint="final",
        extract={"split": "train", "per_class": 6, "dtype": "float32", "batch_size": 5,
                 "compressor": "zstd", "seed": 0},
        training={"train_per_class": None, "data_seed": 0, "device": "cpu"}))
    sites = measured_sites(model)
    assert store.layer_names == [s.name for s in sites]
    assert store.neurons == [s.width for s in sites] == site_widths(arch, 1.0, 1.0)
    reduction = "tokens" if arch["name"] == "vit" else "space"
    assert reduction in store.attrs["pooling"]
    x = (dataset.x_train[store.indices] / 255.0 - np.array(norm["mean"])) / np.array(norm["std"])
    with SiteRecorder(sites) as recorder, torch.inference_mode():
        model(torch.from_numpy(x.transpose(0, 3, 1, 2).astype(np.float32)))
        for got, want in zip(store.layers(), recorder.pop()):
            np.testing.assert_allclose(got, want.numpy(), rtol=1e-4, atol=1e-4)

    rows = store_measures(store.path, "coarse", MeasureSettings.from_params(TINY_MEASURES))
    totals = rows[rows.scope == "total"].set_index("measure")["value"]
    for measure in ("c1", "c2", "c3", "c4"):
        assert np.isfinite(totals[measure]), measure

    x_train = torch.from_numpy(dataset.x_train).permute(0, 3, 1, 2).float() / 255.0
    y_train = torch.from_numpy(dataset.coarse_train).long()
    result = compute_sharpness(model, x_train, y_train, TINY_SHARPNESS)
    assert set(result["measures"]) == {"sigma1", "sigma2", "alpha1", "alpha2"}
    assert all(np.isfinite(m["value"]) for m in result["measures"].values())

    rotation = run_rotation(tmp_path / "init.pt", tmp_path / "model.pt", tmp_path / "rotation.json")
    assert rotation["layer_names"] == kernel_names(model)
    assert len(rotation["measures"]["rotation"]["layers"]) == len(kernel_parameters(model))
    assert 0 < rotation["measures"]["rotation"]["value"] <= 2


# --------------------------------------------------------------------------- config

REPO = Path(__file__).resolve().parents[1]
TINY = REPO / "tests" / "configs" / "tiny.yaml"
SCHEMA = REPO / "config" / "schema.yaml"


def tiny_config(arch: dict) -> dict:
    config = yaml.safe_load(TINY.read_text())
    config["studies"]["tiny"]["arch"] = arch
    return config


@pytest.mark.parametrize("arch", [TINY_VIT, {"name": "vgg", "norm": "group", "base_width": 4},
                                  {"name": "resnet", "norm": "none"}], ids=["vit", "vgg-group", "resnet-none"])
def test_config_accepts_the_variants_without_filling_new_keys(arch):
    from intraclass.config import validate_config

    settings = validate_config(tiny_config(arch), SCHEMA)["studies"]["tiny"]["arch"]
    assert settings == {"base_width": 32, **arch}  # absent keys stay absent: no reruns of old configs


@pytest.mark.parametrize("arch, message", [
    ({"name": "vgg", "nrom": "layer"}, r"arch: Additional properties.*'nrom'"),
    ({"name": "vgg", "norm": "instance"}, r"arch\.norm: 'instance' is not one of"),
    ({"name": "vit", "pach": 4}, r"arch: Additional properties.*'pach'"),
    ({"name": "resnet", "patch": 4}, r"studies\.tiny\.arch: arch 'resnet' takes no option\(s\) \['patch'\]"),
    ({"name": "vit", "norm": "layer"}, r"studies\.tiny\.arch: arch 'vit' takes no option\(s\) \['norm'\]"),
    ({"name": "vit", "base_width": 8, "heads": 3}, r"studies\.tiny\.arch: ViT embedding width .* heads = 3"),
])
def test_config_rejects_bad_arch_keys_before_any_job(arch, message):
    from intraclass.config import ConfigError, validate_config

    with pytest.raises(ConfigError, match=message):
        validate_config(tiny_config(arch), SCHEMA)


def test_config_checks_k_against_the_vits_declared_sizes():
    from intraclass.config import ConfigError, validate_config

    config = tiny_config({"name": "vit", "base_width": 4, "blocks": 1})  # 1 layer of 16 neurons
    config["studies"]["tiny"]["measures"]["k"]["c2"] = 2
    with pytest.raises(ConfigError, match=r"measures\.k\.c2 = 2 exceeds the 1 measured layers"):
        validate_config(config, SCHEMA)
    config["studies"]["tiny"]["measures"]["k"].update(c2=1, c1=17)
    with pytest.raises(ConfigError, match=r"measures\.k\.c1 = 17 exceeds the 16 neurons"):
        validate_config(config, SCHEMA)


@pytest.mark.slow
def test_tiny_vit_study_runs_end_to_end(tmp_path):
    """The tiny study with a ViT: training, extraction, measures, sharpness, rotation, tables."""
    import pandas as pd

    from intraclass.activations import open_store

    config = tiny_config({"name": "vit", "base_width": 8, "patch": 7, "blocks": 2, "heads": 2})
    path = tmp_path / "vit.yaml"
    path.write_text(yaml.safe_dump(config, sort_keys=False))
    workdir = tmp_path / "run"
    workdir.mkdir()
    cmd = [sys.executable, "-m", "snakemake", "--cores", "2", "--configfile", str(path),
           "--directory", str(workdir)]
    run = subprocess.run(cmd, cwd=REPO, capture_output=True, text=True, timeout=1500)
    assert run.returncode == 0, (run.stdout + run.stderr)[-6000:]
    results = workdir / "results" / "tiny"
    table = pd.read_csv(results / "tables" / "models.csv")
    assert len(table) == 4 and (table["status"] == "ok").all()
    for column in ("c1", "c2", "c3", "c4", "sigma1", "sigma2", "alpha1", "alpha2", "rotation"):
        assert table[column].notna().all(), column
    model = table["model"].iloc[0]
    store = open_store(results / "activations" / model / "final.zarr")
    assert store.layer_names == ["blocks.0.mlp.fc1", "blocks.1.mlp.fc1"] and store.neurons == [32, 32]
    assert "max over tokens" in store.attrs["pooling"]
    checkpoint = torch.load(results / "models" / model / "model.pt", weights_only=True)
    assert checkpoint["arch_spec"]["arch"] == "vit" and checkpoint["arch_spec"]["patch"] == 7
    assert (results / "tables" / "kendall.csv").stat().st_size > 0


# ------------------------------------------------- a builder of your own in a grid study

EXAMPLE_BUILDER = "intraclass.zoo_import:example_cnn"
GRID_MODEL = {"id": "m", "lr": 0.05, "weight_decay": 0.0, "batch_size": 8, "optimizer": "sgd", "dropout": 0.0,
              "augment": False, "width": 1.0, "depth": 1.5, "seed": 0}


def test_a_builder_grid_study_validates_with_its_options_as_given():
    from intraclass.config import load_studies, validate_config

    arch = {"name": EXAMPLE_BUILDER, "layers": 1, "anything": [1, 2]}  # any key is an option
    config = validate_config(tiny_config(arch), SCHEMA)
    assert config["studies"]["tiny"]["arch"] == arch  # no base_width filled in: the builder's default holds
    assert len(load_studies(config)["tiny"].models) == 4


@pytest.mark.parametrize("name, message", [
    ("no_such_module.nets:build", r"studies\.tiny\.arch\.name: builder 'no_such_module\.nets:build': cannot "
                                  r"find module no_such_module\.nets on the Python path or in the working directory"),
    ("intraclass.zoo_import:example_cnm", r"studies\.tiny\.arch\.name: builder .*: module intraclass\.zoo_import "
                                          r"\(.*zoo_import\.py\) defines no example_cnm"),
    ("intraclass.zoo_import.example_cnn", r"studies\.tiny\.arch\.name: 'intraclass\.zoo_import\.example_cnn' "
                                          r"does not match"),
])
def test_a_bad_builder_name_stops_before_any_job(name, message):
    from intraclass.config import ConfigError, validate_config

    with pytest.raises(ConfigError, match=message):
        validate_config(tiny_config({"name": name}), SCHEMA, settings=False)


def test_the_builder_check_imports_neither_torch_nor_the_builder():
    """Snakemake's main process checks the name before any job without importing torch."""
    code = ("import sys, yaml; from intraclass.config import validate_config\n"
            f"config = yaml.safe_load(open({str(TINY)!r}))\n"
            f"config['studies']['tiny']['arch'] = {{'name': {EXAMPLE_BUILDER!r}}}\n"
            f"validate_config(config, {str(SCHEMA)!r})\n"
            "print(sorted(m for m in ('torch', 'intraclass.zoo_import') if m in sys.modules))")
    run = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=300)
    assert run.returncode == 0, run.stderr[-3000:]
    assert run.stdout.strip() == "[]"


def blob_data(channels: int = 1):
    from intraclass.train import TrainData

    rng = np.random.default_rng(0)
    y = np.arange(24) % 2
    x = (rng.integers(0, 100, (24, 8, 8, channels)) + 120 * y[:, None, None, None]).astype(np.uint8)
    return TrainData(x[:16], y[:16], x[16:], y[16:], num_classes=2)


def train_outputs(root: Path):
    from intraclass.train import TrainOutputs

    return TrainOutputs(model=root / "model.pt", metrics=root / "metrics.json", history=root / "history.csv",
                        ckpt=root / "ckpt")


TRAIN_SETTINGS = {"epochs": 2, "lr_milestones": [2], "lr_gamma": 0.2, "stop_loss": 0.0, "device": "cpu"}


def test_a_builder_module_without_measured_sites_fails_its_training_clearly(tmp_path, monkeypatch):
    """A builder file beside the config (the working directory) is found by the config check
    and imported by the job; a module that does not declare its sites is refused by name."""
    from intraclass.config import ConfigError, validate_config
    from intraclass.train import train

    (tmp_path / "plain_nets.py").write_text(
        "from torch import nn\n\n\n"
        "def mlp(num_classes, in_channels, hparams, hidden=4):\n"
        "    return nn.Sequential(nn.Flatten(), nn.LazyLinear(hidden), nn.ReLU(), nn.Linear(hidden, num_classes))\n")
    monkeypatch.chdir(tmp_path)
    validate_config(tiny_config({"name": "plain_nets:mlp", "hidden": 3}), SCHEMA, settings=False)
    with pytest.raises(ConfigError, match=r"plain_nets \(.*plain_nets\.py\) defines no cnn"):
        validate_config(tiny_config({"name": "plain_nets:cnn"}), SCHEMA, settings=False)
    with pytest.raises(TypeError, match=r"builder 'plain_nets:mlp': Sequential does not declare its measured "
                                        r"sites: give it a measured_sites\(\) method"):
        train(blob_data(), GRID_MODEL, {"name": "plain_nets:mlp", "hidden": 3}, "fine", TRAIN_SETTINGS,
              train_outputs(tmp_path / "out"))
    assert not (tmp_path / "out" / "model.pt").exists()


def test_a_builder_grid_model_is_rebuilt_by_every_later_stage(tmp_path):
    """train calls the builder with the model's hyperparameters and the arch's other keys; its
    checkpoints (final, init, evolution) rebuild it in extraction, sharpness, c0 and rotation."""
    from intraclass.activations import extract_checkpoint, open_store
    from intraclass.data import save_dataset
    from intraclass.data.toy import make_synthetic
    from intraclass.measures.blackbox import run_blackbox
    from intraclass.measures.rotation import run_rotation
    from intraclass.sharpness import run_sharpness
    from intraclass.train import run_training

    dataset = make_synthetic(seed=0, n_super=2, n_sub=2, per_class=12, test_per_class=5, size=8)
    data = save_dataset(dataset, tmp_path / "toy.npz")
    arch = {"name": EXAMPLE_BUILDER, "base_width": 4, "layers": 2}
    training = {**TRAIN_SETTINGS, "train_per_class": None, "data_seed": 0, "eval_batch_size": 64}
    out = train_outputs(tmp_path / "m")
    metrics = run_training(data, out, GRID_MODEL, arch, "coarse", training, checkpoint_epochs=[1])
    assert metrics["status"] == "ok"
    hparams = {k: v for k, v in GRID_MODEL.items() if k != "id"}
    spec = {"arch": EXAMPLE_BUILDER, "num_classes": 2, "in_channels": 1, "hparams": hparams,
            "options": {"base_width": 4, "layers": 2}}
    for path in (out.model, out.init, out.ckpt / "epoch1.pt"):
        model, checkpoint = load_checkpoint(path)
        assert checkpoint["arch_spec"] == spec, path
        # depth x1.5 scales the builder's 2 blocks to 3: it got the grid's factors
        assert [s.width for s in measured_sites(model)] == [4, 8, 16]
    for name, weights in (("final", out.model), ("epoch1", out.ckpt)):
        store = open_store(extract_checkpoint(
            weights, data, tmp_path / f"{name}.zarr", checkpoint=name,
            extract={"split": "train", "per_class": 6, "dtype": "float32", "batch_size": 8, "compressor": "none",
                     "seed": 0},
            training={"train_per_class": None, "data_seed": 0, "device": "cpu"}))
        assert store.layer_names == ["blocks.0.1", "blocks.1.1", "blocks.2.1"] and store.neurons == [4, 8, 16]
    stage = {"training": {"train_per_class": None, "data_seed": 0, "device": "cpu", "eval_batch_size": 64},
             "labels": "coarse", "metrics_path": out.metrics}
    sharp = run_sharpness(out.model, data, tmp_path / "sharpness.json",
                          {"measures": ["sigma2", "alpha2"], "seed": 0, **TINY_SHARPNESS}, **stage)
    assert all(np.isfinite(m["value"]) for m in sharp["measures"].values())
    c0 = run_blackbox(out.model, data, tmp_path / "blackbox.json", {"per_subclass": 3}, **stage)
    assert np.isfinite(c0["measures"]["c0"]["value"])
    rotation = run_rotation(out.init, out.model, tmp_path / "rotation.json", {"epoch1": out.ckpt / "epoch1.pt"},
                            metrics_path=out.metrics)
    model, _ = load_checkpoint(out.model)
    assert len(rotation["measures"]["rotation"]["layers"]) == len(kernel_parameters(model)) == 4  # 3 convs, fc


def test_k_larger_than_a_builders_model_fails_its_training_naming_the_key_and_widths(tmp_path):
    """The config cannot know a builder's sizes: the train job checks k on the built model,
    with measures read from the config at run time (intraclass.config.sizes_check)."""
    from types import SimpleNamespace

    from intraclass.config import ConfigError, sizes_check, validate_config
    from intraclass.train import train

    arch = {"name": EXAMPLE_BUILDER, "base_width": 2, "layers": 2}
    config = tiny_config(arch)
    config["studies"]["tiny"]["measures"]["k"]["c1"] = 7  # the models have 2 + 4 = 6 neurons
    config = validate_config(config, SCHEMA)  # passes: the sizes are unknown before training
    job = SimpleNamespace(wildcards=SimpleNamespace(study="tiny"), config=config)
    model = {**GRID_MODEL, "depth": 1.0}
    with pytest.raises(ConfigError, match=r"^studies\.tiny\.measures\.k\.c1 = 7 exceeds the 6 neurons of model m "
                                          r"\(measured layer widths \[2, 4\]\)$"):
        train(blob_data(), model, arch, "fine", TRAIN_SETTINGS, train_outputs(tmp_path), check_sizes=sizes_check(job))
    assert not (tmp_path / "init.pt").exists()  # stopped before anything was written
    config["studies"]["tiny"]["measures"]["k"]["c1"] = 6
    metrics = train(blob_data(), model, arch, "fine", TRAIN_SETTINGS, train_outputs(tmp_path),
                    check_sizes=sizes_check(job))
    assert metrics["status"] == "ok"


def test_a_builder_grid_study_dry_runs(tmp_path):
    from workflow_runs import dry_run

    config = tiny_config({"name": EXAMPLE_BUILDER, "base_width": 4, "layers": 2})
    path = tmp_path / "builder.yaml"
    path.write_text(yaml.safe_dump(config, sort_keys=False))
    code, counts, out = dry_run("--configfile", str(path), "-d", str(tmp_path))
    assert code == 0, out[-3000:]
    assert counts["train"] == counts["measures"] == counts["sharpness"] == counts["rotation"] == 4, counts
    assert counts["extract"] == 5 and "import_model" not in counts and "paper_vs_run" not in counts


@pytest.mark.slow
def test_tiny_builder_study_trains_and_measures_end_to_end(tmp_path):
    """Two models of the example builder through every stage of the workflow."""
    import pandas as pd

    config = tiny_config({"name": EXAMPLE_BUILDER, "base_width": 4, "layers": 2})
    study = config["studies"]["tiny"]
    study["grid"][0].update(batch_size=[32], optimizer=["sgd", "adam"])
    study["training"]["train_per_class"] = 10
    study["analysis"] = {"bootstrap": {"resamples": 20}}
    path = tmp_path / "builder.yaml"
    path.write_text(yaml.safe_dump(config, sort_keys=False))
    workdir = tmp_path / "run"
    workdir.mkdir()
    cmd = [sys.executable, "-m", "snakemake", "--cores", "2", "--configfile", str(path), "--directory", str(workdir)]
    run = subprocess.run(cmd, cwd=REPO, capture_output=True, text=True, timeout=1500)
    assert run.returncode == 0, (run.stdout + run.stderr)[-6000:]
    results = workdir / "results" / "tiny"
    table = pd.read_csv(results / "tables" / "models.csv")
    assert len(table) == 2 and (table["status"] == "ok").all()
    for column in ("c0", "c1", "c2", "c3", "c4", "sigma1", "sigma2", "alpha1", "alpha2", "rotation"):
        assert table[column].notna().all(), column
    checkpoint = torch.load(results / "models" / table["model"][0] / "model.pt", weights_only=True)
    assert checkpoint["arch_spec"]["arch"] == EXAMPLE_BUILDER
    assert checkpoint["arch_spec"]["options"] == {"base_width": 4, "layers": 2}
    assert (results / "figures" / "fig6.png").is_file()  # the evolution checkpoints were measured
