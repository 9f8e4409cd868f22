"""Config schema, defaults and the hyperparameter grid (paper appendix A.1)."""

import copy
from pathlib import Path

import pytest
import yaml

from intraclass.config import AXES, ConfigError, ModelConfig, expand_grid, load_studies, validate_config

ROOT = Path(__file__).resolve().parents[1]
SCHEMA = ROOT / "config" / "schema.yaml"


def load(name):
    return yaml.safe_load((ROOT / "config" / name).read_text())


@pytest.fixture
def default_config():
    return load("config.yaml")


def test_shipped_configs_validate():
    for name in ("config.yaml", "paper.yaml"):
        validate_config(load(name), SCHEMA)


def test_defaults_are_filled_at_every_level(default_config):
    del default_config["studies"]["default"]["measures"]
    del default_config["studies"]["default"]["training"]["lr_gamma"]
    config = validate_config(default_config, SCHEMA)
    study = config["studies"]["default"]
    assert study["measures"]["k"] == {"c1": 30, "c2": 5, "c3": 30, "c4": 5, "clusterability": 1, "purity": 1,
                                      "bimodality": 30}
    assert study["measures"]["c4_quantile"] == 0.75
    assert study["training"]["lr_gamma"] == 0.2
    assert config["resources"]["train"]["threads"] >= 1


def test_validation_does_not_modify_its_input(default_config):
    before = copy.deepcopy(default_config)
    validate_config(default_config, SCHEMA)
    assert default_config == before


def test_studies_get_independent_default_objects(default_config):
    """The validator inserts default dicts by reference; two studies must not share one."""
    second = copy.deepcopy(default_config["studies"]["default"])
    del second["measures"]
    first = default_config["studies"]["default"]
    del first["measures"]
    default_config["studies"]["other"] = second
    config = validate_config(default_config, SCHEMA)
    config["studies"]["default"]["measures"]["k"]["c1"] = 7
    assert config["studies"]["other"]["measures"]["k"]["c1"] == 30


@pytest.mark.parametrize(
    "mutate, key, words",
    [
        # unknown key (a typo)
        (lambda c: c["studies"]["default"]["training"].update(epoch=3),
         "studies.default.training", "'epoch' was unexpected"),
        # wrong type
        (lambda c: c["studies"]["default"]["training"].update(epochs="ten"),
         "studies.default.training.epochs", "not of type 'integer'"),
        # unknown architecture
        (lambda c: c["studies"]["default"]["arch"].update(name="alexnet"),
         "studies.default.arch.name", "'alexnet' does not match '^(vgg|resnet|vit|"),
        # dataset names are free but must fit results/data/<name>.npz and the {dataset} wildcard
        (lambda c: c["datasets"].update({"Image-Net": {"source": "image_folder", "root": "x"}}),
         "datasets", "'Image-Net' does not match"),
        # out of bounds
        (lambda c: c["studies"]["default"]["measures"]["k"].update(c1=0),
         "studies.default.measures.k.c1", "less than the minimum"),
        # unknown optimizer in the grid
        (lambda c: c["studies"]["default"]["grid"][0].update(optimizer=["rmsprop"]),
         "studies.default.grid.0.optimizer.0", "'rmsprop' is not one of"),
    ],
)
def test_schema_errors_name_the_key(default_config, mutate, key, words):
    mutate(default_config)
    with pytest.raises(ConfigError) as err:
        validate_config(default_config, SCHEMA)
    assert f"at {key}:" in str(err.value)
    assert words in str(err.value)


def test_study_dataset_must_be_configured(default_config):
    default_config["studies"]["default"]["dataset"] = "cifar10"
    with pytest.raises(ConfigError, match=r"studies\.default\.dataset: 'cifar10' has no entry"):
        validate_config(default_config, SCHEMA)


def test_evolution_epochs_within_training(default_config):
    default_config["studies"]["default"]["evolution"]["epochs"] = [1, 99]
    with pytest.raises(ConfigError, match=r"evolution\.epochs: \[99\] exceed training\.epochs"):
        validate_config(default_config, SCHEMA)


def test_unknown_evolution_model_id(default_config):
    default_config["studies"]["default"]["evolution"]["models"] = ["lr9-nope"]
    config = validate_config(default_config, SCHEMA)
    with pytest.raises(ConfigError, match="unknown model id"):
        load_studies(config)


def test_paper_grids_have_the_papers_sizes():
    studies = load_studies(validate_config(load("paper.yaml"), SCHEMA))
    sizes = {name: len(s.models) for name, s in studies.items()}
    assert sizes == {"resnet_cifar100_coarse": 192, "resnet_cifar100": 192, "vgg_cifar10": 144}
    vgg = studies["vgg_cifar10"]
    assert not any(m.dropout == 0.4 for m in vgg.models)
    for s in studies.values():
        ids = s.model_ids
        assert len(set(ids)) == len(ids)
        # ids are built from the hyperparameters alone: distinct configs, distinct ids
        assert len({m for m in s.models}) == len(ids)


def test_paper_grid_values_follow_appendix_a1():
    studies = load_studies(validate_config(load("paper.yaml"), SCHEMA))
    models = studies["resnet_cifar100_coarse"].models
    assert {(m.lr, m.weight_decay) for m in models} == {(0.01, 0), (0.32, 0), (0.1, 0), (0.1, 4e-5)}
    assert {m.batch_size for m in models} == {100, 300}
    assert {m.optimizer for m in models} == {"sgd", "adam"}
    assert {(m.dropout, m.augment) for m in models} == {(0, True), (0, False), (0.2, False), (0.4, False)}
    assert {(m.width, m.depth) for m in models} == {(1, 1), (1.5, 1), (1, 1.5)}


def test_grid_blocks_union_without_duplicates():
    block = {
        "lr_wd": [[0.1, 0]], "batch_size": [32, 64], "optimizer": ["sgd"],
        "dropout_aug": [[0, False]], "width_depth": [[1, 1]],
    }
    models = expand_grid([block, block], seeds=[0, 1])
    assert len(models) == 4  # the second block adds nothing
    assert [m.id for m in models][:2] == [
        "lr0.1-wd0-bs32-sgd-do0-aug0-w1-d1-s0",
        "lr0.1-wd0-bs32-sgd-do0-aug0-w1-d1-s1",
    ]


def test_model_id_is_readable_and_round_trips_through_dict():
    m = ModelConfig(lr=0.1, weight_decay=4e-5, batch_size=100, optimizer="adam", dropout=0.2,
                    augment=False, width=1.5, depth=1.0, seed=3)
    assert m.id == "lr0.1-wd4e-05-bs100-adam-do0.2-aug0-w1.5-d1-s3"
    d = m.to_dict()
    assert d.pop("id") == m.id
    assert ModelConfig(**d) == m
    assert set(m.axis_values()) == set(AXES)


def test_default_grid_varies_every_axis_with_groups(default_config):
    """Issue 10: every one of the 8 axes has groups of models equal on all other axes."""
    study = load_studies(validate_config(default_config, SCHEMA))["default"]
    rows = [m.axis_values() for m in study.models]
    for axis in AXES:
        groups = {}
        for row in rows:
            key = tuple(row[a] for a in AXES if a != axis)
            groups.setdefault(key, set()).add(row[axis])
        assert any(len(values) >= 2 for values in groups.values()), axis


def test_evolution_count_spreads_over_the_grid(default_config):
    default_config["studies"]["default"]["evolution"]["models"] = 3
    study = load_studies(validate_config(default_config, SCHEMA))["default"]
    ids = study.model_ids
    assert len(set(study.evolution)) == 3
    assert study.evolution[0] == ids[0] and study.evolution[-1] == ids[-1]
    epochs = study.settings["evolution"]["epochs"]
    assert study.checkpoints(ids[0]) == ["final"] + [f"epoch{e}" for e in epochs]
    others = [i for i in ids if i not in study.evolution]
    assert study.checkpoints(others[0]) == ["final"]
    assert study.checkpoint_epochs(others[0]) == []


# --- checks a schema cannot make: every one stops before the first job, naming key and value


def study_of(config):
    return config["studies"]["default"]


@pytest.mark.parametrize(
    "mutate, words",
    [
        (lambda s: s["evolution"].update(epochs=[1, 1]),
         r"studies\.default\.evolution\.epochs: \[1, 1\] lists epoch\(s\) \[1\] twice"),
        (lambda s: s["measures"]["k"].update(c1=241),  # 2 * (8 + 16 + 32 + 64) = 240 neurons
         r"studies\.default\.measures\.k\.c1 = 241 exceeds the 240 neurons of model lr0\.01-"),
        (lambda s: s["measures"]["k"].update(c4=9),  # VGG at depth 1: 8 measured layers
         r"measures\.k\.c4 = 9 exceeds the 8 measured layers of model"),
        (lambda s: s["measures"].update(layer_k=9),  # first stage: 8 channels
         r"measures\.layer_k = 9 exceeds the 8 neurons of the narrowest layer"),
        (lambda s: s["extract"].update(per_class=151),
         r"studies\.default\.extract\.per_class = 151 exceeds training\.train_per_class = 150"),
        (lambda s: s["sharpness"]["sigma"].update(drawz=3),
         r"studies\.default\.sharpness\.sigma: unknown key 'drawz'"),
        (lambda s: s["sharpness"]["alpha"].update(epochs=0),
         r"studies\.default\.sharpness\.alpha\.epochs"),
        (lambda s: s["figures"]["fig4"].update(c1_kfactor=2),
         r"studies\.default\.figures\.fig4: unknown key\(s\) \['c1_kfactor'\]"),
        (lambda s: s["figures"]["style"].update(dpii=2),
         r"studies\.default\.figures\.style: unknown key\(s\) \['dpii'\]"),
        (lambda s: s["figures"]["fig7"].update(model="lr9-nope"),
         r"studies\.default\.figures\.fig7: model\(s\) \['lr9-nope'\] are not in the grid"),
        (lambda s: s["grid"].__setitem__(slice(None), s["grid"][:1]) or s["grid"][0].update(
            lr_wd=[[0.1, 0]], batch_size=[32], optimizer=["sgd"]),
         r"studies\.default\.grid: no two of its 1 model\(s\) differ on exactly one axis.*two values"),
    ],
)
def test_late_config_errors_now_fail_validation(default_config, mutate, words):
    mutate(study_of(default_config))
    with pytest.raises(ConfigError, match=words):
        validate_config(default_config, SCHEMA)


def test_grid_of_two_models_differing_on_two_axes_has_no_kendall_group(default_config):
    study_of(default_config)["grid"] = [
        {"lr_wd": [[0.1, 0]], "batch_size": [32], "optimizer": ["sgd"],
         "dropout_aug": [[0, False]], "width_depth": [[1, 1]]},
        {"lr_wd": [[0.01, 0]], "batch_size": [128], "optimizer": ["sgd"],
         "dropout_aug": [[0, False]], "width_depth": [[1, 1]]},
    ]
    with pytest.raises(ConfigError, match="no two of its 2 model"):
        validate_config(default_config, SCHEMA)
    study_of(default_config)["grid"][1]["batch_size"] = [32]  # now they differ on lr only
    validate_config(default_config, SCHEMA)


def test_k_limits_hold_at_the_limit_and_k_sweep_may_exceed(default_config):
    """k equal to the smallest model's size passes; k_sweep beyond it is allowed (NaN tail)."""
    measures = study_of(default_config)["measures"]
    measures["k"].update(c1=240, c3=240, c2=8, c4=8)
    measures.update(layer_k=8, k_sweep={"c1": 5000, "c3": 5000})
    validate_config(default_config, SCHEMA)


def test_dataset_options_are_checked_before_any_job(default_config):
    default_config["datasets"]["fashion_mnist_small"]["seed"] = 3
    with pytest.raises(ConfigError, match=r"datasets\.fashion_mnist_small: option\(s\) \['seed'\]"):
        validate_config(default_config, SCHEMA)


def test_settings_checks_can_be_left_to_the_main_process(default_config):
    study_of(default_config)["sharpness"]["sigma"].update(drawz=3)
    validate_config(default_config, SCHEMA, settings=False)  # a job's own parse: no torch import


@pytest.mark.parametrize("arch", ["vgg", "resnet"])
@pytest.mark.parametrize("width, depth, base", [(1, 1, 4), (1.5, 1, 4), (1, 1.5, 3), (2, 0.5, 2)])
def test_site_widths_match_the_built_models(arch, width, depth, base):
    from intraclass.config import site_widths
    from intraclass.models import build_model, measured_sites

    model = build_model(arch, num_classes=3, in_channels=1, width=width, depth=depth, base_width=base)
    assert site_widths(arch, width, depth, base) == [s.module.num_features for s in measured_sites(model)]


def test_model_stage_args_complete_training_with_the_run_only_keys():
    from types import SimpleNamespace

    from intraclass.config import model_stage_args

    smk = SimpleNamespace(
        input=SimpleNamespace(model="m.pt", data="d.npz", metrics="metrics.json"),
        output=SimpleNamespace(json="out.json"),
        params=SimpleNamespace(labels="coarse", training={"train_per_class": 5, "data_seed": 1}),
        wildcards=SimpleNamespace(study="s"),
        config={"studies": {"s": {"training": {"device": "cpu", "eval_batch_size": 7, "resume_every": 2}}}})
    log = object()
    assert model_stage_args(smk, log) == {
        "model_path": "m.pt", "data_path": "d.npz", "out_path": "out.json", "labels": "coarse",
        "training": {"train_per_class": 5, "data_seed": 1, "device": "cpu", "eval_batch_size": 7,
                     "resume_every": 2},
        "log": log, "metrics_path": "metrics.json"}


def test_config_checks_do_not_import_torch():
    """Every DAG build validates the config in Snakemake's main process: the checks must not
    pay for importing torch (seconds), e.g. through the sharpness stage's settings."""
    import subprocess
    import sys

    code = ("import sys, yaml; from intraclass.config import validate_config; "
            "validate_config(yaml.safe_load(open('config/paper.yaml')), 'config/schema.yaml', settings=True); "
            "print('torch' in sys.modules)")
    root = Path(__file__).resolve().parents[1]
    result = subprocess.run([sys.executable, "-c", code], cwd=root, capture_output=True, text=True, check=True)
    assert result.stdout.strip() == "False", result.stderr
