"""intraclass.data: the dataset file format, every source's loader, training_indices, prepare."""

from __future__ import annotations

import dataclasses
import gzip
import hashlib
import logging
import runpy
import socket
import subprocess
import sys
import types
from pathlib import Path

import numpy as np
import pytest
from data_fixtures import idx_bytes, write_cifar, write_fashion_idx

from intraclass.data import (
    Dataset,
    DatasetError,
    cifar,
    fashion_mnist,
    files,
    load_dataset,
    prepare,
    save_dataset,
    stratified_indices,
    toy,
    training_indices,
)
from intraclass.data.format import content_digest

REPO = Path(__file__).resolve().parents[1]


@pytest.fixture
def offline(monkeypatch):
    """Fail any attempt to open a network connection."""

    def refuse(*args, **kwargs):
        raise AssertionError("network access attempted in an offline test")

    monkeypatch.setattr(socket.socket, "connect", refuse)
    monkeypatch.setattr(socket, "create_connection", refuse)


def small_dataset(hierarchy: bool = True, seed: int = 0) -> Dataset:
    """24 train + 12 test images of 4x4x1: 4 fine classes in 2 superclasses (or none)."""
    d = toy.make_synthetic(seed=seed, n_super=2, n_sub=2, per_class=6, test_per_class=3, size=4)
    if hierarchy:
        return d
    return dataclasses.replace(d, coarse_train=None, coarse_test=None, coarse_names=None)


def assert_same(a: Dataset, b: Dataset) -> None:
    for key, value in a.to_arrays().items():
        np.testing.assert_array_equal(value, b.to_arrays()[key], err_msg=key)
    assert a.fine_names == b.fine_names and a.coarse_names == b.coarse_names


# ---------------------------------------------------------------------------- file format


@pytest.mark.parametrize("hierarchy", [True, False])
def test_save_load_round_trip_and_reproducible_bytes(tmp_path, hierarchy):
    d = small_dataset(hierarchy)
    save_dataset(d, tmp_path / "a.npz")
    save_dataset(d, tmp_path / "sub" / "b.npz")
    back = load_dataset(tmp_path / "a.npz")
    assert_same(d, back)
    assert back.has_hierarchy == hierarchy
    assert back.x_train.dtype == np.uint8 and back.y_train.dtype == np.int64
    assert (tmp_path / "a.npz").read_bytes() == (tmp_path / "sub" / "b.npz").read_bytes()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["a.npz", "sub"]  # no temporary left


def test_labels_and_fine_to_coarse():
    d = small_dataset()
    assert d.labels("train") is d.y_train and d.labels("test", "coarse") is d.coarse_test
    np.testing.assert_array_equal(d.fine_to_coarse, [0, 0, 1, 1])
    np.testing.assert_array_equal(d.fine_to_coarse[d.y_train], d.coarse_train)
    with pytest.raises(ValueError, match="split"):
        d.labels("val")
    with pytest.raises(DatasetError, match="no superclass"):
        small_dataset(hierarchy=False).labels("train", "coarse")


def test_interrupted_write_keeps_the_old_file(tmp_path, monkeypatch):
    out = tmp_path / "d.npz"
    save_dataset(small_dataset(seed=0), out)
    before = out.read_bytes()
    calls = []

    def fail_on_third(*args, **kwargs):
        calls.append(1)
        if len(calls) == 3:
            raise KeyboardInterrupt  # a killed job
        return real(*args, **kwargs)

    real = np.lib.format.write_array
    monkeypatch.setattr(np.lib.format, "write_array", fail_on_third)
    with pytest.raises(KeyboardInterrupt):
        save_dataset(small_dataset(seed=1), out)
    assert out.read_bytes() == before
    assert [p.name for p in tmp_path.iterdir()] == ["d.npz"]


def _arrays(**changes):
    arrays = small_dataset().to_arrays()
    arrays.update(changes)
    return {k: v for k, v in arrays.items() if v is not None}


BAD_FILES = {
    "missing key": (lambda: _arrays(y_test=None), "missing keys \\['y_test'\\]"),
    "unknown key": (lambda: _arrays(extra=np.zeros(2)), "unknown keys \\['extra'\\]"),
    "half a hierarchy": (lambda: _arrays(coarse_names=None), "go together"),
    "float images": (lambda: _arrays(x_train=np.zeros((24, 4, 4, 1), np.float32)), "x_train must be a 4-D uint8"),
    "NHW images": (lambda: _arrays(x_test=np.zeros((12, 4, 4), np.uint8)), "x_test must be a 4-D uint8"),
    "image shapes differ": (lambda: _arrays(x_test=np.zeros((12, 5, 4, 1), np.uint8)), "differ in shape"),
    "int32 labels": (lambda: _arrays(y_train=small_dataset().y_train.astype(np.int32)), "y_train must be a 1-D int64"),
    "label count": (lambda: _arrays(y_test=np.zeros(5, np.int64)), "y_test has 5 labels but x_test has 12"),
    "label range": (lambda: _arrays(y_test=np.full(12, 4, np.int64)), "outside 0..3"),
    "empty class": (lambda: _arrays(y_train=np.zeros(24, np.int64), coarse_train=np.zeros(24, np.int64)),
                    "without training images"),
    "duplicate names": (lambda: _arrays(fine_names=np.array(["a", "a", "b", "c"])), "duplicate"),
    "not a hierarchy": (lambda: _arrays(coarse_test=1 - small_dataset().coarse_test), "not a hierarchy"),
    "empty superclass": (lambda: _arrays(coarse_names=np.array(["s0", "s1", "s2"])),
                         "superclasses without any fine class: \\['s2'\\]"),
}


@pytest.mark.parametrize("case", BAD_FILES)
def test_load_rejects_malformed_files_naming_file_and_problem(tmp_path, case):
    make, message = BAD_FILES[case]
    path = tmp_path / "bad.npz"
    np.savez(path, **make())
    with pytest.raises(DatasetError, match=message) as err:
        load_dataset(path)
    assert str(path) in str(err.value)


def test_load_rejects_unreadable_files(tmp_path):
    good = tmp_path / "good.npz"
    save_dataset(small_dataset(), good)
    truncated = tmp_path / "truncated.npz"
    truncated.write_bytes(good.read_bytes()[: good.stat().st_size // 2])
    garbage = tmp_path / "garbage.npz"
    garbage.write_bytes(b"not a zip file at all")
    npy = tmp_path / "array.npz"
    with open(npy, "wb") as f:
        np.save(f, np.zeros(3))
    for path, message in ((tmp_path / "absent.npz", "does not exist"), (truncated, "not a readable"),
                          (garbage, "not a readable"), (npy, "single .npy")):
        with pytest.raises(DatasetError, match=message) as err:
            load_dataset(path)
        assert str(path) in str(err.value)


# ------------------------------------------------------------------------ training_indices


def test_training_indices_stratified_sorted_seeded():
    d = toy.make_synthetic(seed=3, n_super=2, n_sub=3, per_class=40, test_per_class=2)
    idx = training_indices(d, 7, seed=1)
    assert idx.dtype == np.int64 and np.all(np.diff(idx) > 0)  # sorted, no repeats
    np.testing.assert_array_equal(np.bincount(d.y_train[idx], minlength=6), [7] * 6)
    np.testing.assert_array_equal(idx, training_indices(d, 7, seed=1))
    assert not np.array_equal(idx, training_indices(d, 7, seed=2))
    # nested: the 7 per class of a seed are among its 20 per class
    assert set(idx) <= set(training_indices(d, 20, seed=1))
    np.testing.assert_array_equal(training_indices(d, None, seed=1), np.arange(240))
    np.testing.assert_array_equal(np.bincount(d.y_train[training_indices(d, 40, 0)]), [40] * 6)


def test_training_indices_is_uniform_over_each_class():
    # Every sample of a class should be picked with probability per_class / class size.
    labels = np.repeat(np.arange(2), [10, 30])
    counts = np.zeros(40)
    for seed in range(2000):
        counts[stratified_indices(labels, 5, seed)] += 1
    np.testing.assert_allclose(counts[:10] / 2000, 0.5, atol=0.05)
    np.testing.assert_allclose(counts[10:] / 2000, 5 / 30, atol=0.03)


def test_training_indices_errors():
    d = toy.make_synthetic(per_class=5, test_per_class=1)
    expected = "'super0-sub0' has 5 samples, fewer than the 6 .*at most 5 .*train_per_class"
    with pytest.raises(DatasetError, match=expected):
        training_indices(d, 6, seed=0)
    for bad in (0, -1, 2.5, True, "3"):
        with pytest.raises(ValueError, match="per_class"):
            training_indices(d, bad, seed=0)
    with pytest.raises(ValueError, match="seed"):
        training_indices(d, 2, seed=None)


# ---------------------------------------------------------------------------------- CIFAR


def test_cifar10_fixture_reads_images_in_nhwc(tmp_path, offline):
    spec = write_cifar(tmp_path, cifar.cifar10_spec(), n=12)
    d = cifar.read_cifar(tmp_path, spec)
    assert d.x_train.shape == (60, 32, 32, 3) and d.x_test.shape == (12, 32, 32, 3)
    assert not d.has_hierarchy and d.fine_names == [f"fine{i}" for i in range(10)]
    import pickle

    with open(tmp_path / spec.folder / "data_batch_2", "rb") as f:
        batch = pickle.load(f, encoding="latin1")
    row = batch["data"][4]  # 5th image of the 2nd batch = training image 16
    np.testing.assert_array_equal(d.x_train[16, :, :, 1], row[1024:2048].reshape(32, 32))  # green plane
    np.testing.assert_array_equal(d.x_train[16], row.reshape(3, 32, 32).transpose(1, 2, 0))
    assert d.y_train[16] == batch["labels"][4]


def test_cifar100_fixture_has_coarse_labels_from_the_pickles(tmp_path, offline):
    spec = write_cifar(tmp_path, cifar.cifar100_spec(), n=30, archive=False)
    d = cifar.read_cifar(tmp_path, spec)
    assert d.coarse_names == ["even", "odd"] and d.num_fine == 10
    np.testing.assert_array_equal(d.coarse_train, d.y_train % 2)
    np.testing.assert_array_equal(d.fine_to_coarse, np.arange(10) % 2)


def test_cifar_torchvision_specs_match_torchvision():
    from torchvision.datasets import CIFAR10, CIFAR100

    for spec, cls in ((cifar.cifar10_spec(), CIFAR10), (cifar.cifar100_spec(), CIFAR100)):
        assert spec.archive_md5 == cls.tgz_md5 and spec.folder == cls.base_folder
        ours = [list(f) for f in spec.train_files + spec.test_files]
        assert ours == [list(f) for f in cls.train_list + cls.test_list]


def test_cifar_extracts_a_verified_archive(tmp_path, offline):
    spec = write_cifar(tmp_path / "src", cifar.cifar100_spec(), n=10)
    root = tmp_path / "root"
    root.mkdir()
    (root / spec.archive).write_bytes((tmp_path / "src" / spec.archive).read_bytes())
    d = cifar.read_cifar(root, spec)
    assert len(d.y_train) == 10 and (root / spec.folder / "meta").is_file()
    assert sorted(p.name for p in root.iterdir()) == sorted([spec.archive, spec.folder])  # no temp dirs
    # a corrupt file in the folder is replaced by re-extracting the good archive
    (root / spec.folder / "train").write_bytes(b"corrupt")
    assert_same(cifar.read_cifar(root, spec), d)


def test_cifar_rejects_a_truncated_archive(tmp_path, offline):
    spec = write_cifar(tmp_path / "src", cifar.cifar10_spec())
    root = tmp_path / "root"
    root.mkdir()
    data = (tmp_path / "src" / spec.archive).read_bytes()
    (root / spec.archive).write_bytes(data[: len(data) // 2])
    with pytest.raises(DatasetError, match="md5 .* expected .*truncated or corrupt. Delete it") as err:
        cifar.read_cifar(root, spec, download=False)
    assert str(root / spec.archive) in str(err.value)
    assert not (root / spec.folder).exists()


def test_cifar_real_md5s_reject_foreign_files(tmp_path, offline):
    write_cifar(tmp_path, cifar.cifar10_spec(), archive=False)
    with pytest.raises(DatasetError, match="data_batch_1 has md5 .*expected c99cafc1"):
        prepare("cifar10", {"source": "torchvision", "root": str(tmp_path), "download": False},
                tmp_path / "out.npz")
    assert not (tmp_path / "out.npz").exists()


def test_cifar_missing_offline_says_what_to_do(tmp_path, offline):
    with pytest.raises(DatasetError, match="CIFAR-100 not found .*Set download: true"):
        prepare("cifar100", {"source": "torchvision", "root": str(tmp_path)}, tmp_path / "out.npz")


def test_cifar_wrong_shapes_name_the_file(tmp_path, offline):
    bad = {"data": np.zeros((4, 1024), np.uint8), "labels": [0, 1, 2, 3]}
    spec = write_cifar(tmp_path, cifar.cifar10_spec(), archive=False, batches={"data_batch_3": bad})
    with pytest.raises(DatasetError, match="data_batch_3: 'data' must be a uint8 array of shape \\(N, 3072\\)"):
        cifar.read_cifar(tmp_path, spec)


def test_cifar100_broken_hierarchy_is_rejected(tmp_path, offline):
    rng = np.random.default_rng(0)
    batch = {"data": rng.integers(0, 256, (20, 3072), dtype=np.uint8), "fine_labels": list(range(10)) * 2,
             "coarse_labels": [0] * 10 + [1] * 10}  # each fine class in both superclasses
    spec = write_cifar(tmp_path, cifar.cifar100_spec(), archive=False, batches={"train": batch})
    with pytest.raises(DatasetError, match="CIFAR-100 in .*not a hierarchy"):
        cifar.read_cifar(tmp_path, spec)


def test_download_is_atomic_and_verified(tmp_path, monkeypatch):
    import torchvision.datasets.utils as tvu

    spec = write_cifar(tmp_path / "src", cifar.cifar10_spec(), n=10)
    good = (tmp_path / "src" / spec.archive).read_bytes()
    root = tmp_path / "root"

    def broken(url, folder, filename, md5):  # writes half the file, then the connection drops
        (Path(folder) / filename).write_bytes(good[:1000])
        raise ConnectionResetError("connection reset by peer")

    monkeypatch.setattr(tvu, "download_url", broken)
    with pytest.raises(DatasetError, match="downloading .* failed .*ConnectionResetError"):
        cifar.read_cifar(root, spec, download=True)
    assert list(root.iterdir()) == []  # neither a partial archive nor a temporary directory

    def works(url, folder, filename, md5):
        assert url == spec.url and md5 == spec.archive_md5
        (Path(folder) / filename).write_bytes(good)

    monkeypatch.setattr(tvu, "download_url", works)
    assert len(cifar.read_cifar(root, spec, download=True).y_train) == 50
    assert files.file_digest(root / spec.archive) == spec.archive_md5


# --------------------------------------------------------------------------- Fashion-MNIST


@pytest.mark.parametrize("gz", [True, False])
def test_idx_round_trip(tmp_path, gz):
    arrays = write_fashion_idx(tmp_path, gz=gz)
    suffix = ".gz" if gz else ""
    np.testing.assert_array_equal(fashion_mnist.read_idx(tmp_path / f"t10k-images-idx3-ubyte{suffix}"),
                                  arrays["test_images"])
    np.testing.assert_array_equal(fashion_mnist.read_idx(tmp_path / f"train-labels-idx1-ubyte{suffix}"),
                                  arrays["train_labels"])


def test_idx_files_give_fashion_mnist_with_its_hierarchy(tmp_path):
    arrays = write_fashion_idx(tmp_path)
    paths = {role: tmp_path / f"{name}.gz" for role, name in fashion_mnist.IDX_FILES.items()}
    d = fashion_mnist.read_idx_files(paths)
    assert d.x_train.shape == (30, 28, 28, 1) and d.x_test.shape == (20, 28, 28, 1)
    np.testing.assert_array_equal(d.x_train[..., 0], arrays["train_images"])
    np.testing.assert_array_equal(d.y_test, arrays["test_labels"])
    groups = {d.coarse_names[s]: {d.fine_names[f] for f in np.flatnonzero(d.fine_to_coarse == s)}
              for s in range(3)}
    assert groups == {  # resources/README.md
        "tops": {"T-shirt/top", "Pullover", "Coat", "Shirt"},
        "footwear": {"Sandal", "Sneaker", "Ankle boot"},
        "other": {"Trouser", "Dress", "Bag"},
    }
    # the full dataset's sizes are checked for the local and torchvision sources
    with pytest.raises(DatasetError, match="30 images, the full dataset has 60000"):
        fashion_mnist.read_local(tmp_path)


def test_fashion_mnist_names_are_torchvision_order():
    from torchvision.datasets import FashionMNIST

    assert list(fashion_mnist.FINE_NAMES) == FashionMNIST.classes


def test_idx_rejects_bad_files(tmp_path):
    good = idx_bytes(np.zeros((3, 28, 28), np.uint8))
    cases = {
        "truncated.gz": (gzip.compress(good)[:-20], "truncated or corrupt"),
        "short-data": (good[:-5], "header says shape \\(3, 28, 28\\)"),
        "bad-magic": (b"\x01\x02" + good[2:], "bad magic"),
        "int-type": (bytes([0, 0, 0x0C]) + good[3:], "type code 0x0c"),
        "short-header": (good[:9], "truncated inside its header"),
    }
    for name, (data, message) in cases.items():
        (tmp_path / name).write_bytes(data)
        with pytest.raises(DatasetError, match=message) as err:
            fashion_mnist.read_idx(tmp_path / name)
        assert name in str(err.value)


def test_fashion_mnist_local_missing_files(tmp_path):
    write_fashion_idx(tmp_path)
    (tmp_path / "t10k-labels-idx1-ubyte.gz").unlink()
    with pytest.raises(DatasetError, match="missing t10k-labels-idx1-ubyte\\(.gz\\).*dataset-fashion-mnist"):
        prepare("fashion_mnist", {"source": "local", "root": str(tmp_path)}, tmp_path / "out.npz")


def test_fashion_mnist_torchvision_checks_md5(tmp_path, offline):
    write_fashion_idx(tmp_path / "FashionMNIST" / "raw")
    with pytest.raises(DatasetError, match="train-images-idx3-ubyte.gz has md5 .* expected 8d4fb7e6"):
        prepare("fashion_mnist", {"source": "torchvision", "root": str(tmp_path)}, tmp_path / "o.npz")
    with pytest.raises(DatasetError, match="missing. Set download: true"):
        prepare("fashion_mnist", {"source": "torchvision", "root": str(tmp_path / "none")}, tmp_path / "o.npz")


@pytest.mark.skipif(not fashion_mnist.DEBIAN_DIR.is_dir(),
                    reason=f"{fashion_mnist.DEBIAN_DIR} absent (apt-get install dataset-fashion-mnist)")
def test_full_fashion_mnist_and_the_bundled_subset_is_reproducible(tmp_path, offline):
    import importlib.util

    d = prepare("fashion_mnist", {"source": "local"}, tmp_path / "fm.npz")
    assert d.x_train.shape == (60000, 28, 28, 1) and d.x_test.shape == (10000, 28, 28, 1)
    np.testing.assert_array_equal(np.bincount(d.y_train), [6000] * 10)
    np.testing.assert_array_equal(np.bincount(d.coarse_test), [4000, 3000, 3000])
    spec = importlib.util.spec_from_file_location("make_bundled_subset", REPO / "tools" / "make_bundled_subset.py")
    tool = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(tool)
    tool.main(["--out", str(tmp_path / "small.npz")])
    assert files.file_digest(tmp_path / "small.npz", "sha256") == fashion_mnist.BUNDLED_SHA256


# ---------------------------------------------------------------------------- bundled subset


def test_bundled_subset_checksum_hierarchy_balance():
    path = fashion_mnist.BUNDLED_DIR / fashion_mnist.BUNDLED_NAME
    assert path == REPO / "resources" / "fashion_mnist_small.npz"
    assert hashlib.sha256(path.read_bytes()).hexdigest() == fashion_mnist.BUNDLED_SHA256
    assert path.stat().st_size < 4e6
    d = fashion_mnist.read_bundled()
    assert d.x_train.shape == (6000, 28, 28, 1) and d.x_test.shape == (2000, 28, 28, 1)
    np.testing.assert_array_equal(np.bincount(d.y_train), [600] * 10)
    np.testing.assert_array_equal(np.bincount(d.y_test), [200] * 10)
    assert d.fine_names == list(fashion_mnist.FINE_NAMES) and d.coarse_names == ["tops", "footwear", "other"]
    np.testing.assert_array_equal(d.fine_to_coarse, fashion_mnist.FINE_TO_COARSE)
    assert 0.2 < d.x_train.mean() / 255 < 0.4  # real clothing images, not blank (FMNIST mean ~0.29)


def test_bundled_subset_tampered_or_missing(tmp_path):
    data = bytearray((fashion_mnist.BUNDLED_DIR / fashion_mnist.BUNDLED_NAME).read_bytes())
    data[len(data) // 2] ^= 0xFF
    (tmp_path / fashion_mnist.BUNDLED_NAME).write_bytes(bytes(data))
    with pytest.raises(DatasetError, match="sha256 .* recorded one is cc12c240.*Restore it"):
        prepare("fashion_mnist_small", {"source": "bundled", "root": str(tmp_path)}, tmp_path / "o.npz")
    with pytest.raises(DatasetError, match="is missing"):
        fashion_mnist.read_bundled(tmp_path / "nowhere")


# ------------------------------------------------------------------------ digits, synthetic


def test_digits():
    from sklearn.datasets import load_digits

    d = toy.load_digits_dataset(test_per_class=30, seed=0)
    raw = load_digits()
    assert len(d.y_train) + len(d.y_test) == 1797 and d.x_train.shape[1:] == (8, 8, 1)
    np.testing.assert_array_equal(np.bincount(d.y_test), [30] * 10)
    assert d.x_train.max() == 255 and d.x_train.min() == 0
    # the training images are sklearn's, in order, scaled 0..16 -> 0..255
    train = np.setdiff1d(np.arange(1797), stratified_indices(raw.target, 30, 0))
    np.testing.assert_array_equal(d.x_train[..., 0], np.rint(raw.images[train] * 255 / 16))
    for s, (name, members) in enumerate(toy.DIGIT_GROUPS.items()):
        assert d.coarse_names[s] == name
        assert sorted(np.flatnonzero(d.fine_to_coarse == s)) == sorted(members)
    assert sorted(sum(toy.DIGIT_GROUPS.values(), ())) == list(range(10))


def test_synthetic_is_seeded_and_hierarchical():
    a = toy.make_synthetic(seed=5, n_super=4, n_sub=3, per_class=10, test_per_class=4, size=6, channels=3)
    assert_same(a, toy.make_synthetic(seed=5, n_super=4, n_sub=3, per_class=10, test_per_class=4, size=6, channels=3))
    assert not np.array_equal(a.x_train, toy.make_synthetic(seed=6, n_super=4, n_sub=3, per_class=10,
                                                            test_per_class=4, size=6, channels=3).x_train)
    assert a.x_train.shape == (120, 6, 6, 3) and a.x_test.shape == (48, 6, 6, 3)
    np.testing.assert_array_equal(a.coarse_train, a.y_train // 3)
    np.testing.assert_array_equal(np.bincount(a.y_train), [10] * 12)
    with pytest.raises(ValueError, match="n_super must be an integer >= 2"):
        toy.make_synthetic(n_super=1)


def test_synthetic_subclasses_are_clusters_inside_their_superclass():
    d = toy.make_synthetic(seed=0, n_super=3, n_sub=4, per_class=30, test_per_class=30)
    x_train = d.x_train.reshape(len(d.x_train), -1).astype(float)
    x_test = d.x_test.reshape(len(d.x_test), -1).astype(float)
    means = np.stack([x_train[d.y_train == c].mean(0) for c in range(d.num_fine)])
    dist = np.linalg.norm(x_test[:, None] - means[None], axis=2)  # (test samples, fine classes)
    # nearest subclass mean among the subclasses of the sample's own superclass
    own = d.fine_to_coarse[None, :] == d.coarse_test[:, None]
    assert (np.where(own, dist, np.inf).argmin(1) == d.y_test).mean() > 0.95
    # subclasses of one superclass are closer to each other than to other superclasses'
    between = np.linalg.norm(means[:, None] - means[None], axis=2)
    same = d.fine_to_coarse[:, None] == d.fine_to_coarse[None, :]
    off_diagonal = ~np.eye(d.num_fine, dtype=bool)
    assert between[same & off_diagonal].mean() < 0.8 * between[~same].mean()


# -------------------------------------------------------------------------------- prepare


def reference_digest(dataset: Dataset) -> str:
    """The content digest written out plainly: per array (sorted by name) its name, dtype,
    shape and bytes, all through one sha256."""
    h = hashlib.sha256()
    for key in sorted(dataset.to_arrays()):
        array = np.ascontiguousarray(dataset.to_arrays()[key])
        h.update(f"{key}|{array.dtype.str}|{array.shape}|".encode() + array.tobytes())
    return "sha256:" + h.hexdigest()


@pytest.mark.parametrize("hierarchy", [True, False])
def test_content_digest_follows_the_content_only(tmp_path, hierarchy):
    d = small_dataset(hierarchy)
    assert content_digest(d) == reference_digest(d)
    save_dataset(d, tmp_path / "a.npz")
    assert content_digest(load_dataset(tmp_path / "a.npz")) == content_digest(d)  # file round trip
    assert content_digest(small_dataset(hierarchy)) == content_digest(d)  # rebuilt: same digest
    x = d.x_train.copy()
    x[3, 1, 2, 0] ^= 1  # one bit of one pixel
    y = d.y_test.copy()
    y[0] = 1 - y[0]  # fine classes 0 and 1 share superclass 0: still a hierarchy
    changed = [dataclasses.replace(d, x_train=x), dataclasses.replace(d, y_test=y),
               dataclasses.replace(d, fine_names=[*d.fine_names[:-1], "other"]), small_dataset(hierarchy, seed=1)]
    digests = {content_digest(c) for c in changed}
    assert len(digests) == len(changed) and content_digest(d) not in digests
    reshaped = dataclasses.replace(d, x_train=d.x_train.reshape(len(x), 2, 8, 1),
                                   x_test=d.x_test.reshape(len(d.x_test), 2, 8, 1))
    assert content_digest(reshaped) != content_digest(d)  # same bytes, other shape


def test_prepare_writes_the_digest(tmp_path):
    options = {"source": "synthetic", "per_class": 3, "seed": 2}
    d = prepare("synthetic", options, tmp_path / "s.npz", tmp_path / "s.sha256")
    assert (tmp_path / "s.sha256").read_text() == content_digest(d) + "\n"
    prepare("synthetic", {**options, "seed": 3}, tmp_path / "s.npz", tmp_path / "s.sha256")
    assert (tmp_path / "s.sha256").read_text() != content_digest(d) + "\n"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["s.npz", "s.sha256"]


def test_prepare_bundled_offline(tmp_path, offline):
    out = tmp_path / "data" / "fashion_mnist_small.npz"
    d = prepare("fashion_mnist_small", {"source": "bundled", "root": None, "download": False}, out)
    assert_same(d, load_dataset(out))
    assert files.file_digest(out, "sha256") == fashion_mnist.BUNDLED_SHA256  # same bytes as shipped


@pytest.mark.parametrize("name, options, message", [
    ("mnist", {}, "datasets.mnist.source is required: one of bundled, cifar10"),
    ("mnist", {"source": "mnist"}, "datasets.mnist.source must be one of bundled, .*, not 'mnist'"),
    ("cifar10", {"source": "local", "root": "x"}, "'local' is the first release's source name, kept only "
                                                  "under the dataset names \\['fashion_mnist'\\]"),
    ("mine", {"source": "torchvision"}, "for a dataset named 'mine' write source: cifar10 or cifar100 or "
                                        "fashion_mnist"),
    ("synthetic", {"source": "synthetic", "n_supers": 3}, "option\\(s\\) \\['n_supers'\\] mean nothing"),
    ("fashion_mnist_small", {"source": "bundled", "download": True}, "download: true means nothing"),
    ("cifar100", {"source": "torchvision", "download": True}, "root is required"),
    ("digits", {"source": "sklearn", "download": "no"}, "download must be true or false"),
    ("digits", {"source": "digits", "root": "x"}, "datasets.digits.root means nothing for source digits"),
    ("synthetic", {"source": "synthetic", "size": 0}, "datasets.synthetic: synthetic: size must be"),
    ("digits", ["sklearn"], "must be a mapping"),
])
def test_prepare_rejects_bad_options_before_writing(tmp_path, name, options, message):
    out = tmp_path / "out.npz"
    out.write_bytes(b"previous")
    with pytest.raises(DatasetError, match=message):
        prepare(name, options, out)
    assert out.read_bytes() == b"previous"


def test_prepare_digits_and_synthetic_options(tmp_path):
    d = prepare("digits", {"source": "sklearn", "seed": 1, "test_per_class": 20}, tmp_path / "d.npz")
    np.testing.assert_array_equal(np.bincount(load_dataset(tmp_path / "d.npz").y_test), [20] * 10)
    assert d.summary() == "1597 train + 200 test images of 8x8x1, 10 classes in 3 superclasses"
    s = prepare("synthetic", {"source": "synthetic", "n_super": 2, "n_sub": 2, "per_class": 3, "size": 5,
                              "channels": 3, "seed": 9, "test_per_class": 2}, tmp_path / "s.npz")
    assert s.x_train.shape == (12, 5, 5, 3)


def test_prepare_dataset_script(tmp_path, offline, monkeypatch):
    # the script configures process-wide logging: give it back afterwards
    root = logging.getLogger()
    monkeypatch.setattr(sys, "excepthook", sys.excepthook)
    monkeypatch.setattr(root, "handlers", list(root.handlers))
    monkeypatch.setattr(root, "level", root.level)
    snakemake = types.SimpleNamespace(
        params=types.SimpleNamespace(name="synthetic", options={"source": "synthetic", "root": None,
                                                                "download": False, "per_class": 4},
                                     coarse_studies=["default"]),
        output=types.SimpleNamespace(npz=str(tmp_path / "results" / "data" / "synthetic.npz"),
                                     digest=str(tmp_path / "results" / "data" / "synthetic.sha256")),
        log=[str(tmp_path / "logs" / "prepare_dataset" / "synthetic.log")],
        threads=1,
    )
    runpy.run_path(str(REPO / "workflow" / "scripts" / "prepare_dataset.py"), init_globals={"snakemake": snakemake})
    for handler in logging.getLogger().handlers:
        handler.close()
    assert load_dataset(snakemake.output.npz).x_train.shape == (36, 8, 8, 1)
    log = Path(snakemake.log[0]).read_text()
    assert "dataset synthetic" in log and "done: 36 train + 180 test images of 8x8x1" in log
    digest = Path(snakemake.output.digest).read_text().strip()
    assert digest == content_digest(load_dataset(snakemake.output.npz)) and digest in log


def test_failing_script_prints_its_traceback_once_to_stderr_and_once_to_the_log(tmp_path):
    log = tmp_path / "prepare.log"
    script = f"""
import runpy, types
snakemake = types.SimpleNamespace(
    params=types.SimpleNamespace(name="mnist", options={{"source": "mnist"}}, coarse_studies=[]),
    output=types.SimpleNamespace(npz={str(tmp_path / "x.npz")!r}, digest={str(tmp_path / "x.sha256")!r}),
    log=[{str(log)!r}], threads=1)
runpy.run_path({str(REPO / "workflow" / "scripts" / "prepare_dataset.py")!r}, init_globals={{"snakemake": snakemake}})
"""
    env = {"PYTHONPATH": str(REPO / "src"), "PATH": "/usr/bin:/bin"}
    result = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, env=env, timeout=120)
    assert result.returncode == 1
    message = "datasets.mnist.source must be one of"
    assert result.stderr.count("Traceback") == 1 and message in result.stderr, result.stderr
    assert log.read_text().count("Traceback") == 1 and message in log.read_text()
