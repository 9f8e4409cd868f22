"""Datasets by configuration: free names, the image_folder and npz sources, hierarchy files
and presets, their errors, the one list of sources, and the README's example."""

from __future__ import annotations

import dataclasses
import importlib.util
import json
import pickle
import re
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import yaml
from data_fixtures import write_cifar
from PIL import Image
from workflow_runs import dry_run

from intraclass.config import ConfigError, validate_config
from intraclass.data import DatasetError, cifar, load_dataset, prepare, save_dataset, toy
from intraclass.data.files import file_digest
from intraclass.data.format import content_digest
from intraclass.data.hierarchy import (
    CIFAR10_ANIMALS_VEHICLES,
    PRESETS,
    apply_hierarchy,
    read_hierarchy_file,
)
from intraclass.data.prepare import (
    COMMON_KEYS,
    HIERARCHY_KEYS,
    SOURCES,
    check_dataset_uses,
    check_options,
    source_files,
)

REPO = Path(__file__).resolve().parents[1]
SCHEMA = REPO / "config" / "schema.yaml"
CIFAR10_NAMES = ["airplane", "automobile", "bird", "cat", "deer", "dog", "frog", "horse", "ship", "truck"]
HIERARCHY = {"round": ["ball", "coin"], "long": ["pen", "stick", "rope"]}


def write_images(folder: Path, images: dict[str, list[np.ndarray]]) -> None:
    """PNG files folder/<class>/<i>.png from (H, W) grey or (H, W, 3|4) arrays."""
    for name, arrays in images.items():
        (folder / name).mkdir(parents=True, exist_ok=True)
        for i, a in enumerate(arrays):
            Image.fromarray(a).save(folder / name / f"{i:03d}.png")


def random_images(rng, classes, n, shape=(6, 5)) -> dict[str, list[np.ndarray]]:
    return {c: [rng.integers(0, 256, shape, dtype=np.uint8) for _ in range(n)] for c in classes}


def expected_arrays(images: dict[str, list[np.ndarray]]) -> tuple[np.ndarray, np.ndarray, list[str]]:
    """Plain reference: classes sorted, files in order, NHWC with C = 1 for grey."""
    names = sorted(images)
    x = [a if a.ndim == 3 else a[..., None] for c in names for a in images[c]]
    y = [k for k, c in enumerate(names) for _ in images[c]]
    return np.stack(x), np.array(y, dtype=np.int64), names


@pytest.fixture
def split_folder(tmp_path):
    """train/ and test/ of 5 classes (4 + 2 grey 6x5 images each) and its hierarchy.json."""
    rng = np.random.default_rng(0)
    classes = [c for fines in HIERARCHY.values() for c in fines]
    train, test = random_images(rng, classes, 4), random_images(rng, classes, 2)
    write_images(tmp_path / "shapes" / "train", train)
    write_images(tmp_path / "shapes" / "test", test)
    (tmp_path / "shapes" / "hierarchy.json").write_text(json.dumps(HIERARCHY))
    return tmp_path / "shapes", train, test


# ------------------------------------------------------------------------ image folder


def test_image_folder_with_hierarchy_file_matches_a_plain_reading(split_folder, tmp_path):
    root, train, test = split_folder
    options = {"source": "image_folder", "root": str(root), "hierarchy": str(root / "hierarchy.json")}
    d = prepare("my_shapes", options, tmp_path / "out.npz", tmp_path / "out.sha256", coarse_studies=["s"])
    for split, images in (("train", train), ("test", test)):
        x, y, names = expected_arrays(images)
        np.testing.assert_array_equal(getattr(d, f"x_{split}"), x)
        np.testing.assert_array_equal(d.labels(split), y)
        coarse = [next(s for s, fines in HIERARCHY.items() if names[f] in fines) for f in y]
        assert [d.coarse_names[c] for c in d.labels(split, "coarse")] == coarse
    assert d.fine_names == ["ball", "coin", "pen", "rope", "stick"] and d.coarse_names == ["round", "long"]
    assert d.x_train.dtype == np.uint8 and d.image_shape == (6, 5, 1)
    assert (tmp_path / "out.sha256").read_text().strip() == content_digest(load_dataset(tmp_path / "out.npz"))


def test_image_folder_seeded_split(tmp_path):
    rng = np.random.default_rng(1)
    images = {"a": [rng.integers(0, 256, (4, 4), dtype=np.uint8) for _ in range(10)],
              "b": [rng.integers(0, 256, (4, 4), dtype=np.uint8) for _ in range(3)]}
    write_images(tmp_path / "pool", images)
    options = {"source": "image_folder", "root": str(tmp_path / "pool"), "test_fraction": 0.3, "seed": 4}
    d = prepare("pool", options, tmp_path / "p.npz")
    # per class round(0.3 n) test images, at least 1: a 3 of 10, b 1 of 3
    np.testing.assert_array_equal(np.bincount(d.y_test), [3, 1])
    np.testing.assert_array_equal(np.bincount(d.y_train), [7, 2])
    for k, name in enumerate(["a", "b"]):  # train and test partition each class's images
        got = np.concatenate([d.x_train[d.y_train == k], d.x_test[d.y_test == k]])[..., 0]
        assert sorted(a.tobytes() for a in got) == sorted(a.tobytes() for a in images[name])
    again = prepare("pool", options, tmp_path / "q.npz")
    assert content_digest(again) == content_digest(d)
    other = prepare("pool", {**options, "seed": 5}, tmp_path / "r.npz")
    assert content_digest(other) != content_digest(d)
    assert not d.has_hierarchy  # no hierarchy given: fine labels only


def test_image_folder_channels(tmp_path):
    rng = np.random.default_rng(2)
    grey = rng.integers(0, 256, (3, 3), dtype=np.uint8)
    rgb = rng.integers(0, 256, (3, 3, 3), dtype=np.uint8)
    opaque = np.concatenate([rgb, np.full((3, 3, 1), 255, np.uint8)], axis=2)
    write_images(tmp_path / "mixed", {"g": [grey, grey], "c": [rgb, opaque]})
    d = prepare("mixed", {"source": "image_folder", "root": str(tmp_path / "mixed"), "test_fraction": 0.5},
                tmp_path / "m.npz")
    assert d.image_shape == (3, 3, 3)  # one colour image: every image RGB, grey replicated
    pixels = np.concatenate([d.x_train, d.x_test])
    assert any((p == np.repeat(grey[..., None], 3, axis=2)).all() for p in pixels)
    assert sum((p == rgb).all() for p in pixels) == 2  # the opaque alpha channel is dropped
    forced = prepare("mixed", {"source": "image_folder", "root": str(tmp_path / "mixed"), "test_fraction": 0.5,
                               "channels": 1}, tmp_path / "f.npz")
    luma = np.asarray(Image.fromarray(rgb).convert("L"))
    assert forced.image_shape == (3, 3, 1) and any((p[..., 0] == luma).all() for p in forced.x_train)
    clear = opaque.copy()
    clear[0, 0, 3] = 0
    write_images(tmp_path / "alpha", {"a": [clear, rgb], "b": [rgb, rgb]})
    with pytest.raises(DatasetError, match=r"000\.png has transparent pixels"):
        prepare("alpha", {"source": "image_folder", "root": str(tmp_path / "alpha")}, tmp_path / "a.npz")


def folder_error(tmp_path, layout, message, **options):
    """prepare on a folder built by ``layout(root)`` fails with ``message``, writing nothing."""
    root = tmp_path / "bad"
    layout(root)
    with pytest.raises(DatasetError, match=message):
        prepare("bad", {"source": "image_folder", "root": str(root), **options}, tmp_path / "bad.npz")
    assert not (tmp_path / "bad.npz").exists()


def _grey(*shape):
    return np.zeros(shape, dtype=np.uint8)


@pytest.mark.parametrize("layout, message, options", [
    (lambda r: write_images(r, {"a": [_grey(4, 4), _grey(4, 5)], "b": [_grey(4, 4)] * 2}),
     r"images of 2 different sizes \(4x4 \(width x height\): 3 image\(s\), .*; 5x4 .*a/001\.png", {}),
    (lambda r: (write_images(r, {"a": [_grey(4, 4)] * 2}), (r / "b").mkdir(), (r / "b" / "notes.txt").touch()),
     r"class folder\(s\) \['b'\] hold no image", {}),
    (lambda r: write_images(r / "train", {"a": [_grey(2, 2)] * 2}),
     r"has a train/ subfolder but no test/", {}),
    (lambda r: (write_images(r / "train", {"a": [_grey(2, 2)], "b": [_grey(2, 2)]}),
                write_images(r / "test", {"a": [_grey(2, 2)]})),
     r"same class folders; only in train/: \['b'\], only in test/: \[\]", {}),
    (lambda r: (write_images(r / "train", {"a": [_grey(2, 2)]}), write_images(r / "test", {"a": [_grey(2, 2)]})),
     r"test_fraction means nothing", {"test_fraction": 0.5}),
    (lambda r: write_images(r, {"a": [_grey(2, 2)], "b": [_grey(2, 2)] * 2}),
     r"class 'a' has 1 image\(s\); a train/test split needs at least 2", {}),
    (lambda r: r.mkdir(), r"has no class subfolders", {}),
])
def test_image_folder_errors_name_the_problem(tmp_path, layout, message, options):
    folder_error(tmp_path, layout, message, **options)


def test_image_folder_missing(tmp_path):
    with pytest.raises(DatasetError, match=r"image folder .*nowhere does not exist"):
        prepare("x", {"source": "image_folder", "root": str(tmp_path / "nowhere")}, tmp_path / "x.npz")


# ------------------------------------------------------------------------ hierarchies


def test_hierarchy_file_formats_agree(tmp_path):
    (tmp_path / "h.json").write_text(json.dumps(HIERARCHY))
    rows = [f"{f},{s}" for s, fines in HIERARCHY.items() for f in fines]
    (tmp_path / "h.csv").write_text("fine,superclass\n" + "\n".join(rows) + "\n")
    tree = {"name": "things", "children": [
        {"name": "round", "children": [{"name": "ball"}, {"name": "coins", "children": [{"name": "coin"}]}]},
        {"name": "long", "children": [{"name": "pen"}, {"name": "stick"}, {"name": "rope"}]}]}
    (tmp_path / "breeds.json").write_text(json.dumps(tree))
    expected = tuple((s, tuple(f)) for s, f in HIERARCHY.items())
    for name in ("h.json", "h.csv", "breeds.json"):
        assert read_hierarchy_file(tmp_path / name).groups == expected, name
    # one level deeper: the superclasses are the depth-2 nodes (a leaf above them is an error)
    with pytest.raises(DatasetError, match=r"leaf 'ball' sits at depth 2, above superclass_level 3"):
        read_hierarchy_file(tmp_path / "breeds.json", superclass_level=3)
    deeper = read_hierarchy_file(tmp_path / "breeds.json", superclass_level=2)
    assert deeper.superclasses == ["ball", "coins", "pen", "stick", "rope"] and deeper.singletons()


@pytest.mark.parametrize("name, text, message", [
    ("two.json", '{"a": ["x", "y"], "b": ["y", "z"]}', r"fine class 'y' is in two superclasses, 'a' and 'b'"),
    ("two.csv", "fine,superclass\nx,a\ny,a\nx,b\n", r"fine class 'x' is in two superclasses, 'a' and 'b' \(row 4\)"),
    ("dup.json", '{"a": ["x", "y"], "a": ["z"]}', r"key\(s\) \['a'\] appear twice"),
    ("empty.json", '{"a": ["x", "y"], "b": []}', r"superclass 'b' has no fine class"),
    ("bad.json", '{"a": "x"}', r"superclass 'a' must map to a list of fine class names"),
    ("head.csv", "class,group\nx,a\n", r"first line must be the header 'fine,superclass'"),
    ("broken.json", '{"a": [', r"is not valid JSON"),
    ("h.txt", "a: x", r"expected a \.json or \.csv file, or one of the presets"),
])
def test_hierarchy_file_errors(tmp_path, name, text, message):
    (tmp_path / name).write_text(text)
    with pytest.raises(DatasetError, match=message):
        read_hierarchy_file(tmp_path / name)


def test_presets_are_hierarchies_of_the_named_datasets():
    c100 = PRESETS["cifar100_superclasses"]
    assert len(c100.superclasses) == 20 and all(len(f) == 5 for _, f in c100.groups)
    assert len(set(c100.fine_classes)) == 100
    assert sorted(PRESETS["cifar10_animals_vehicles"].fine_classes) == CIFAR10_NAMES
    # the Fashion-MNIST preset is the bundled subset's own hierarchy: applying it changes nothing
    from intraclass.data.fashion_mnist import read_bundled

    bundled = read_bundled()
    assert content_digest(apply_hierarchy(bundled, PRESETS["fashion_mnist_three"])) == content_digest(bundled)


def test_cifar10_animals_vehicles_preset_on_cifar_shaped_data(tmp_path, monkeypatch):
    """source cifar10 (torchvision's layout) + hierarchy cifar10_animals_vehicles, on
    random CIFAR-shaped pickles carrying CIFAR-10's class names."""
    spec = write_cifar(tmp_path, cifar.cifar10_spec(), n=20, archive=False)
    meta = tmp_path / spec.folder / spec.meta_file[0]
    meta.write_bytes(pickle.dumps({"label_names": CIFAR10_NAMES, "num_cases_per_batch": 20}, protocol=2))
    spec = dataclasses.replace(spec, meta_file=(spec.meta_file[0], file_digest(meta)))
    monkeypatch.setattr(cifar, "cifar10_spec", lambda: spec)
    options = {"source": "cifar10", "root": str(tmp_path), "hierarchy": "cifar10_animals_vehicles"}
    d = prepare("cifar10_av", options, tmp_path / "c.npz", coarse_studies=["vgg_coarse"])
    plain = cifar.read_cifar(tmp_path, spec)  # no hierarchy: the same images and fine labels
    np.testing.assert_array_equal(d.x_train, plain.x_train)
    np.testing.assert_array_equal(d.y_test, plain.y_test)
    assert d.image_shape == (32, 32, 3) and d.coarse_names == ["animals", "vehicles"]
    for split in ("train", "test"):
        names = [CIFAR10_NAMES[f] for f in d.labels(split)]
        want = [0 if n in CIFAR10_ANIMALS_VEHICLES["animals"] else 1 for n in names]
        np.testing.assert_array_equal(d.labels(split, "coarse"), want)
    # the same data without the preset cannot serve a study on superclasses
    with pytest.raises(DatasetError, match=r"studies vgg_coarse \(labels: coarse\) need superclasses"):
        prepare("cifar10", {"source": "torchvision", "root": str(tmp_path)}, tmp_path / "n.npz",
                coarse_studies=["vgg_coarse"])


def test_hierarchy_must_match_the_classes(split_folder, tmp_path):
    root, _, _ = split_folder
    (tmp_path / "less.json").write_text(json.dumps({"round": ["ball", "coin"], "long": ["pen", "stick"]}))
    base = {"source": "image_folder", "root": str(root), "hierarchy": str(tmp_path / "less.json")}
    with pytest.raises(DatasetError, match=r"has class\(es\) \['rope'\] .* set unlisted: drop"):
        prepare("s", base, tmp_path / "s.npz")
    d = prepare("s", {**base, "unlisted": "drop"}, tmp_path / "s.npz")
    assert d.fine_names == ["ball", "coin", "pen", "stick"] and d.num_fine == 4
    (tmp_path / "more.json").write_text(json.dumps({**HIERARCHY, "soft": ["cloth", "wool"]}))
    with pytest.raises(DatasetError, match=r"lists fine class\(es\) \['cloth', 'wool'\] that image folder"):
        prepare("s", {**base, "hierarchy": str(tmp_path / "more.json")}, tmp_path / "s.npz")


def test_hierarchy_on_other_sources_relabels_by_name(tmp_path):
    rows = "fine,superclass\n" + "".join(f"super{s}-sub{j},{'ab'[j % 2]}\n" for s in range(2) for j in range(2))
    (tmp_path / "h.csv").write_text(rows)
    options = {"source": "synthetic", "n_super": 2, "n_sub": 2, "per_class": 3, "size": 4,
               "hierarchy": str(tmp_path / "h.csv")}
    d = prepare("regrouped", options, tmp_path / "r.npz")
    plain = toy.make_synthetic(n_super=2, n_sub=2, per_class=3, size=4)
    np.testing.assert_array_equal(d.y_train, plain.y_train)
    np.testing.assert_array_equal(d.coarse_train, plain.y_train % 2)  # sub0 -> a, sub1 -> b
    assert source_files("regrouped", options) == [str(tmp_path / "h.csv")]


def test_single_subclass_superclass_is_refused_for_coarse_studies(tmp_path, split_folder):
    root, _, _ = split_folder
    (tmp_path / "lonely.json").write_text(json.dumps({"round": ["ball", "coin", "pen", "stick"], "long": ["rope"]}))
    options = {"source": "image_folder", "root": str(root), "hierarchy": str(tmp_path / "lonely.json")}
    studies = {"fine_study": {"dataset": "s", "labels": "fine"}, "coarse_study": {"dataset": "s", "labels": "coarse"}}
    check_dataset_uses({"s": options}, {"fine_study": studies["fine_study"]})  # fine labels: fine
    with pytest.raises(DatasetError, match=r"studies\.coarse_study \(labels: coarse\): dataset s: "
                                           r"superclass\(es\) \['long'\] .* hold a single fine class"):
        check_dataset_uses({"s": options}, studies)
    with pytest.raises(DatasetError, match=r"superclass\(es\) \['long'\] of dataset s hold a single fine class"):
        prepare("s", options, tmp_path / "s.npz", coarse_studies=["coarse_study"])
    assert prepare("s", options, tmp_path / "s.npz").num_coarse == 2  # no coarse study: allowed
    with pytest.raises(DatasetError, match=r"has no superclasses: give it a hierarchy"):
        check_dataset_uses({"c": {"source": "cifar10", "root": "x"}}, {"v": {"dataset": "c", "labels": "coarse"}})


# ------------------------------------------------------------------------ npz and names


def test_npz_source_and_its_errors(tmp_path):
    d = toy.make_synthetic(n_super=2, n_sub=2, per_class=3, size=4)
    save_dataset(d, tmp_path / "mine.npz")
    got = prepare("mine", {"source": "npz", "path": str(tmp_path / "mine.npz")}, tmp_path / "out.npz")
    assert content_digest(got) == content_digest(d)
    assert source_files("mine", {"source": "npz", "path": "a/b.npz"}) == ["a/b.npz"]
    with pytest.raises(DatasetError, match=r"source npz needs \['path'\]"):
        check_options("mine", {"source": "npz"})
    (tmp_path / "bad.npz").write_bytes(b"nothing")
    with pytest.raises(DatasetError, match=r"bad\.npz is not a readable \.npz .*fix the file"):
        prepare("mine", {"source": "npz", "path": str(tmp_path / "bad.npz")}, tmp_path / "out.npz")


def test_free_names_and_first_release_sources_give_the_same_data(tmp_path):
    first = prepare("fashion_mnist_small", {"source": "bundled"}, tmp_path / "a.npz")
    mine = prepare("clothes", {"source": "bundled", "hierarchy": "fashion_mnist_three"}, tmp_path / "b.npz")
    assert content_digest(first) == content_digest(mine)
    assert check_options("fashion_mnist", {"source": "local"})[1]["source"] == "fashion_mnist_idx"
    assert check_options("digits", {"source": "sklearn"})[1]["source"] == "digits"
    assert source_files("clothes", {"source": "bundled"})[0].endswith("resources/fashion_mnist_small.npz")


@pytest.mark.parametrize("options, message", [
    ({"source": "cifar10", "root": "x", "hierarchy": "cifar10_animal"}, r"hierarchy file cifar10_animal: expected"),
    ({"source": "cifar10", "root": "x", "hierarchy": "missing.json"}, r"hierarchy file missing.json does not exist"),
    ({"source": "cifar10", "root": "x", "unlisted": "drop"}, r"\['unlisted'\] mean\(s\) nothing without a hierarchy"),
    ({"source": "image_folder"}, r"root is required for source image_folder"),
    ({"source": "image_folder", "root": "x", "test_fraction": 1.5}, r"test_fraction must be a number between 0"),
    ({"source": "image_folder", "root": "x", "n_sub": 2}, r"\['n_sub'\] mean nothing for source image_folder"),
])
def test_options_are_checked_before_any_build(options, message):
    with pytest.raises(DatasetError, match=message):
        check_options("d", options)


def test_schema_keys_are_the_sources_keys_and_names_fit_the_wildcard():
    schema = yaml.safe_load(SCHEMA.read_text())
    keys = set(schema["$defs"]["dataset"]["properties"])
    assert keys == set(COMMON_KEYS + HIERARCHY_KEYS).union(*(s.keys for s in SOURCES.values()))
    pattern = schema["properties"]["datasets"]["propertyNames"]["pattern"]
    wildcard = re.search(r'dataset=r"([^"]+)"', (REPO / "workflow" / "rules" / "common.smk").read_text()).group(1)
    assert pattern == f"^{wildcard}$"


# ------------------------------------------------------------------------ the README example


def load_tool():
    spec = importlib.util.spec_from_file_location("make_example", REPO / "tools" / "make_example_image_folder.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.fixture
def example_dir(tmp_path):
    """A working directory holding the example folder at the config's relative path."""
    load_tool().make_example_folder(tmp_path / "data" / "example_image_folder")
    return tmp_path


def example_config() -> dict:
    return yaml.safe_load((REPO / "config" / "example_image_folder.yaml").read_text())


def test_example_config_validates_and_prepares(example_dir, monkeypatch):
    monkeypatch.chdir(example_dir)  # the config's paths are relative to where Snakemake runs
    config = validate_config(example_config(), SCHEMA, settings=False)
    options = config["datasets"]["my_clothes"]
    d = prepare("my_clothes", options, example_dir / "out.npz", coarse_studies=["my_clothes"])
    assert d.summary() == "600 train + 200 test images of 28x28x1, 10 classes in 3 superclasses"
    assert d.coarse_names == ["tops", "footwear", "other"]
    tops = {d.fine_names[f] for f in np.flatnonzero(d.fine_to_coarse == 0)}
    assert tops == {"T-shirt_top", "Pullover", "Coat", "Shirt"}


def test_example_config_needs_the_folder(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    with pytest.raises(ConfigError, match=r"hierarchy file data/example_image_folder/hierarchy\.json does not exist"):
        validate_config(example_config(), SCHEMA, settings=False)


def test_example_folder_is_reproducible(tmp_path):
    tool = load_tool()
    a = tool.make_example_folder(tmp_path / "a", train_per_class=3, test_per_class=2)
    b = tool.make_example_folder(tmp_path / "b", train_per_class=3, test_per_class=2)
    files = sorted(p.relative_to(a) for p in a.rglob("*") if p.is_file())
    assert len(files) == 10 * 5 + 1
    assert files == sorted(p.relative_to(b) for p in b.rglob("*") if p.is_file())
    assert all((a / f).read_bytes() == (b / f).read_bytes() for f in files)


def test_example_config_dry_run(example_dir):
    config = REPO / "config" / "example_image_folder.yaml"
    code, counts, out = dry_run("--configfile", str(config), "-d", str(example_dir))
    assert code == 0, out
    assert counts["prepare_dataset"] == 1 and counts["train"] == 4


def test_coarse_study_without_superclasses_stops_the_dry_run(tmp_path):
    config = example_config()
    config["datasets"] = {"cifar10": {"source": "torchvision", "root": "data/cifar"}}
    config["studies"]["my_clothes"]["dataset"] = "cifar10"
    path = tmp_path / "c.yaml"
    path.write_text(yaml.safe_dump(config))
    code, counts, out = dry_run("--configfile", str(path), "-d", str(tmp_path))
    assert code != 0 and "train" not in counts
    assert "studies.my_clothes (labels: coarse): dataset cifar10 (source cifar10) has no superclasses" in out


@pytest.mark.slow
def test_a_study_on_an_image_folder_runs_end_to_end(example_dir):
    """The README example, on a folder and hierarchy file made here: every stage runs."""
    import pandas as pd

    run = subprocess.run([sys.executable, "-m", "snakemake", "--cores", "2", "--configfile",
                          str(REPO / "config" / "example_image_folder.yaml"), "--directory", str(example_dir)],
                         cwd=REPO, capture_output=True, text=True, timeout=1500)
    assert run.returncode == 0, (run.stdout + run.stderr)[-6000:]
    data = load_dataset(example_dir / "results" / "data" / "my_clothes.npz")
    assert data.coarse_names == ["tops", "footwear", "other"]
    table = pd.read_csv(example_dir / "results" / "my_clothes" / "tables" / "models.csv")
    assert len(table) == 4 and (table["status"] == "ok").all()
    assert table[["c1", "c2", "c3", "c4"]].notna().all().all()
