"""Activation cache: hook capture, spatial max, Zarr round trip, atomicity, sample choice."""

from __future__ import annotations

import logging
import os
import shutil
import subprocess
import sys
import textwrap
from pathlib import Path

import numpy as np
import pytest
import torch
import zarr
from torch import nn
from torch.nn import functional as F
from zarr.codecs import ZstdCodec

import intraclass
from intraclass.activations import (
    CorruptStoreError,
    IncompleteStoreError,
    SiteRecorder,
    StoreWriter,
    iter_preactivations,
    open_store,
    spatial_max,
    write_preactivations,
)

CPU = torch.device("cpu")


def to_input(x_uint8: torch.Tensor) -> torch.Tensor:
    """Test stand-in for the training's normalization: uint8 NHWC -> float NCHW in [0, 1]."""
    return x_uint8.permute(0, 3, 1, 2).float() / 255.0


class TinyNet(nn.Module):
    """conv-BN-ReLU x2 (one with a residual add after the ReLU), pool, dense-BN1d-ReLU, head.

    The same BN->ReLU structure as the project's models, plus a 1-d (dense) site.
    """

    def __init__(self, channels: int = 3, width: int = 4, classes: int = 3):
        super().__init__()
        self.conv1 = nn.Conv2d(channels, width, 3, padding=1, bias=False)
        self.bn1 = nn.BatchNorm2d(width)
        self.conv2 = nn.Conv2d(width, width, 3, padding=1, bias=False)
        self.bn2 = nn.BatchNorm2d(width)
        self.fc1 = nn.Linear(width, 5, bias=False)
        self.bn3 = nn.BatchNorm1d(5)
        self.fc2 = nn.Linear(5, classes)
        for bn in (self.bn1, self.bn2, self.bn3):  # non-trivial running statistics
            with torch.no_grad():
                bn.running_mean.normal_()
                bn.running_var.uniform_(0.5, 2.0)
                bn.weight.normal_()
                bn.bias.normal_()

    def sites(self):
        return [("bn1", self.bn1), ("bn2", self.bn2), ("bn3", self.bn3)]

    def forward(self, x):
        x = F.relu(self.bn1(self.conv1(x)))
        x = x + F.relu(self.bn2(self.conv2(x)))
        x = F.max_pool2d(x, 2).amax(dim=(2, 3))
        return self.fc2(F.relu(self.bn3(self.fc1(x))))

    def manual_preactivations(self, x):
        """The BN outputs computed explicitly from the eval-mode BN formula, spatially maxed."""

        def bn(t, m):
            shape = (1, -1) + (1,) * (t.ndim - 2)
            scale = (m.weight / torch.sqrt(m.running_var + m.eps)).view(shape)
            return (t - m.running_mean.view(shape)) * scale + m.bias.view(shape)

        out = []
        z1 = bn(self.conv1(x), self.bn1)
        out.append(z1.amax(dim=(2, 3)))
        h = F.relu(z1)
        z2 = bn(self.conv2(h), self.bn2)
        out.append(z2.amax(dim=(2, 3)))
        h = F.max_pool2d(h + F.relu(z2), 2).amax(dim=(2, 3))
        z3 = bn(self.fc1(h), self.bn3)
        out.append(z3)  # dense site: no spatial dimensions
        return out


@pytest.fixture
def images():
    rng = np.random.default_rng(0)
    return rng.integers(0, 256, size=(23, 6, 6, 3), dtype=np.uint8)


# ------------------------------------------------------------------------- capture


def test_spatial_max_matches_numpy():
    t = torch.randn(4, 3, 5, 7)
    expected = t.numpy().reshape(4, 3, -1).max(axis=2)
    np.testing.assert_array_equal(spatial_max(t).numpy(), expected)
    np.testing.assert_array_equal(spatial_max(t[:, :, 0]).numpy(), t[:, :, 0].numpy().max(axis=2))
    dense = torch.randn(4, 3)
    assert spatial_max(dense) is dense


def test_hooks_capture_bn_outputs_against_manual_forward(images):
    torch.manual_seed(0)
    model = TinyNet().eval()
    x = to_input(torch.from_numpy(images))
    with SiteRecorder(model.sites()) as recorder, torch.inference_mode():
        model(x)
        captured = recorder.pop()
        manual = model.manual_preactivations(x)
    assert [c.shape for c in captured] == [(23, 4), (23, 4), (23, 5)]
    for got, want in zip(captured, manual):
        torch.testing.assert_close(got, want, rtol=1e-5, atol=1e-5)
    assert all((c < 0).any() for c in captured)  # before the ReLU: negatives are kept
    assert not any(m._forward_hooks for _, m in model.sites())  # hooks removed on exit


def test_site_running_twice_is_an_error():
    model = TinyNet().eval()
    x = torch.rand(2, 3, 6, 6)
    with SiteRecorder(model.sites()) as recorder, torch.inference_mode():
        model(x)
        model(x)
        with pytest.raises(RuntimeError, match="once per forward"):
            recorder.pop()


def test_streaming_batches_equal_one_forward_and_restore_mode(images):
    model = TinyNet().train()
    indices = np.array([0, 3, 4, 8, 9, 10, 15, 16, 20, 21, 22])
    batches = list(iter_preactivations(model, model.sites(), images, indices, to_input,
                                       batch_size=4, device=CPU))
    assert [len(b[0]) for b in batches] == [4, 4, 3]
    assert model.training  # the caller's mode is restored
    with torch.inference_mode():
        manual = model.eval().manual_preactivations(to_input(torch.from_numpy(images[indices])))
    for layer, want in enumerate(manual):
        got = np.concatenate([b[layer] for b in batches])
        np.testing.assert_allclose(got, want.numpy(), rtol=1e-5, atol=1e-5)
    assert not torch.is_inference_mode_enabled()


@pytest.mark.parametrize("arch", ["vgg", "resnet"])
def test_project_models_sites_feed_their_relus(arch):
    models = pytest.importorskip("intraclass.models")
    torch.manual_seed(0)
    model = models.build_model(arch, num_classes=3, in_channels=1, base_width=2).eval()
    sites = [(site.name, site.module) for site in models.measured_sites(model)]
    for _, bn in sites:  # BN away from identity
        with torch.no_grad():
            bn.running_mean.normal_()
            bn.bias.normal_()
    # The ReLU each site feeds: the module right after the BN in its ConvBNReLU unit.
    relu_inputs: list[torch.Tensor] = []
    relus = [dict(model.named_modules())[name.rsplit(".", 1)[0]].relu for name, _ in sites]
    handles = [r.register_forward_pre_hook(lambda m, inp: relu_inputs.append(spatial_max(inp[0])))
               for r in relus]
    x = torch.rand(5, 1, 8, 8)
    with SiteRecorder(sites) as recorder, torch.inference_mode():
        model(x)
        captured = recorder.pop()
    for h in handles:
        h.remove()
    assert [c.shape[1] for c in captured] == [bn.num_features for _, bn in sites]
    assert sum(c.shape[1] for c in captured) == models.count_neurons(model)
    assert len(relu_inputs) == len(captured)
    for got, want in zip(captured, relu_inputs):
        torch.testing.assert_close(got, want, rtol=0, atol=0)


# ------------------------------------------------------------------------- store


def random_layers(n, neurons, seed=0):
    rng = np.random.default_rng(seed)
    return [rng.normal(scale=3.0, size=(n, k)).astype(np.float32) for k in neurons]


def write(path, layers, fine, coarse=None, batch=7, chunk_bytes=64, **kwargs):
    names = [f"site{i}.bn" for i in range(len(layers))]
    with StoreWriter(path, list(zip(names, [a.shape[1] for a in layers])), len(fine),
                     fine=fine, coarse=coarse, chunk_bytes=chunk_bytes, **kwargs) as writer:
        for start in range(0, len(fine), batch):
            writer.append([a[start:start + batch] for a in layers])
        return writer.close()


def test_chunk_rows_split_samples_evenly_near_the_target_size():
    from intraclass.activations import chunk_rows

    rng = np.random.default_rng(0)
    for n, k, itemsize, target in [(10_000, 256, 2, 4 << 20), (50_000, 32, 4, 4 << 20),
                                   (7, 3, 4, 1), (1, 5, 2, 1 << 20)] + [
            tuple(int(v) for v in rng.integers(1, [5000, 600, 3, 1 << 16])) for _ in range(50)]:
        rows = chunk_rows(n, k, itemsize, target)
        chunks = -(-n // rows)
        assert 1 <= rows <= n
        assert rows * k * itemsize <= max(target, 0) + k * itemsize  # about the target size
        assert chunks * rows - n < chunks  # padding of the edge chunk: under a row per chunk
        if n * k * itemsize <= target:
            assert rows == n  # small layers: one chunk


@pytest.mark.parametrize("compressor", ["zstd", "none"])
@pytest.mark.parametrize("dtype", ["float32", "float16"])
def test_round_trip(tmp_path, dtype, compressor):
    n, neurons = 50, [3, 8, 5]
    layers = random_layers(n, neurons)
    fine = np.arange(n) % 4
    coarse = fine // 2
    path = write(tmp_path / "s.zarr", layers, fine, coarse, batch=7, dtype=dtype,
                 compressor=compressor, attrs={"model_id": "m", "epoch": 3})
    store = open_store(path)
    assert len(store) == n and store.layer_names == ["site0.bn", "site1.bn", "site2.bn"]
    assert store.attrs["model_id"] == "m" and store.attrs["dtype"] == dtype
    assert store.attrs["complete"] is True and store.neurons == neurons
    np.testing.assert_array_equal(store.fine, fine)
    np.testing.assert_array_equal(store.coarse, coarse)
    np.testing.assert_array_equal(store.indices, np.arange(n))
    arrays = store.layers()
    # chunks of (a few samples, all neurons): several chunks, none aligned with the batches
    assert zarr.open_array(path / "layers" / "site1.bn").chunks[1] == 8
    assert zarr.open_array(path / "layers" / "site1.bn").nchunks > 2
    for got, want in zip(arrays, layers):
        assert got.dtype == np.float32 and got.shape == want.shape
        np.testing.assert_array_equal(got, want.astype(dtype).astype(np.float32))
    if dtype == "float16":
        np.testing.assert_allclose(arrays[0], layers[0], rtol=2**-11, atol=0)
    np.testing.assert_array_equal(store.layers(["site2.bn"])[0], arrays[2])
    with pytest.raises(KeyError, match="nope"):
        store.layers(["nope"])


def test_no_hierarchy_and_nonfinite_counts(tmp_path):
    layers = [np.array([[1.0, np.inf], [70000.0, 0.0]], dtype=np.float32)]
    path = write(tmp_path / "s.zarr", layers, np.array([0, 1]), dtype="float16")
    store = open_store(path)
    assert store.coarse is None and store.attrs["has_coarse"] is False
    assert store.attrs["nonfinite"] == {"site0.bn": 2}  # inf, and 70000 overflows float16


def test_replacing_a_store_keeps_the_old_until_the_new_is_complete(tmp_path):
    path = write(tmp_path / "s.zarr", random_layers(10, [2], seed=1), np.zeros(10, int))
    new = random_layers(10, [2], seed=2)
    with pytest.raises(ValueError), StoreWriter(path, [("site0.bn", 2)], 10, fine=np.zeros(10, int)) as writer:
        writer.append([new[0][:4]])
        writer.append([new[0][:4, :1]])  # wrong shape
    np.testing.assert_array_equal(open_store(path).layers()[0], random_layers(10, [2], seed=1)[0])
    write(path, new, np.zeros(10, int))
    np.testing.assert_array_equal(open_store(path).layers()[0], new[0])
    assert sorted(p.name for p in tmp_path.iterdir()) == ["s.zarr"]


def test_failed_write_leaves_nothing(tmp_path):
    path = tmp_path / "s.zarr"
    with (
        pytest.raises(IncompleteStoreError, match="4 of 10"),
        StoreWriter(path, [("a", 2)], 10, fine=np.zeros(10, int)) as writer,
    ):
        writer.append([np.zeros((4, 2))])
        writer.close()
    assert list(tmp_path.iterdir()) == []


def test_killed_mid_write_leaves_no_final_path(tmp_path):
    path = tmp_path / "s.zarr"
    script = textwrap.dedent(f"""
        import os, signal, numpy as np
        from intraclass.activations import StoreWriter
        w = StoreWriter({str(path)!r}, [("a", 3)], 100, fine=np.zeros(100, int), chunk_bytes=120)
        w.append([np.ones((50, 3))])
        os.kill(os.getpid(), signal.SIGKILL)
    """)
    src = str(Path(intraclass.__file__).parents[1])
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([src, os.environ.get("PYTHONPATH", "")])}
    result = subprocess.run([sys.executable, "-c", script], env=env, capture_output=True)
    assert result.returncode == -9, result.stderr.decode()
    assert not path.exists()
    [partial] = tmp_path.iterdir()  # the temporary sibling, with half the chunks
    with pytest.raises(IncompleteStoreError, match="'complete' flag"):
        open_store(partial)


@pytest.fixture
def store_path(tmp_path):
    return write(tmp_path / "s.zarr", random_layers(20, [3, 4]), np.arange(20) % 2,
                 np.zeros(20, int), chunk_bytes=40)


def test_rejects_store_without_complete_flag(store_path):
    zarr.open_group(store_path, mode="r+").attrs["complete"] = False
    with pytest.raises(IncompleteStoreError, match=r"s\.zarr is incomplete.*'complete' flag"):
        open_store(store_path)


def test_rejects_missing_layer_array(store_path):
    shutil.rmtree(store_path / "layers" / "site1.bn")
    with pytest.raises(IncompleteStoreError, match=r"missing arrays \['layers/site1.bn'\]"):
        open_store(store_path)


def test_rejects_missing_coarse_labels(store_path):
    shutil.rmtree(store_path / "coarse")
    with pytest.raises(IncompleteStoreError, match=r"missing arrays \['coarse'\]"):
        open_store(store_path)


def test_rejects_arrays_of_different_lengths(store_path):
    zarr.create_array(store_path / "fine", data=np.zeros(19, dtype=np.int64), overwrite=True)
    with pytest.raises(IncompleteStoreError, match=r"disagree.*fine \(19,\)"):
        open_store(store_path)


def test_rejects_missing_chunk(store_path):
    (store_path / "layers" / "site0.bn" / "c" / "1" / "0").unlink()  # chunk (1, 0)
    with pytest.raises(IncompleteStoreError, match="site0.bn.*miss chunks"):
        open_store(store_path)


def test_rejects_what_is_not_a_store(tmp_path):
    with pytest.raises(FileNotFoundError, match="does not exist"):
        open_store(tmp_path / "absent.zarr")
    (tmp_path / "empty.zarr").mkdir()
    with pytest.raises(IncompleteStoreError, match="not a Zarr group"):
        open_store(tmp_path / "empty.zarr")
    zarr.open_group(tmp_path / "other.zarr", mode="w")
    with pytest.raises(IncompleteStoreError, match="not an activation store"):
        open_store(tmp_path / "other.zarr")


# ------------------------------------------------------------------------- integrity


def flip_byte(chunk: Path, offset: int = 3) -> None:
    data = bytearray(chunk.read_bytes())
    data[offset] ^= 0x01
    chunk.write_bytes(bytes(data))


@pytest.mark.parametrize("compressor", ["zstd", "none"])
def test_flipped_byte_in_a_chunk_names_store_layer_and_chunk(tmp_path, compressor):
    path = write(tmp_path / "s.zarr", random_layers(20, [3, 4]), np.arange(20) % 2,
                 compressor=compressor, chunk_bytes=40)
    flip_byte(path / "layers" / "site1.bn" / "c" / "2" / "0")
    store = open_store(path)  # labels are intact: the store opens
    np.testing.assert_array_equal(store.layer("site0.bn"), store.layers(["site0.bn"])[0])
    with pytest.raises(CorruptStoreError) as error:
        store.layer("site1.bn")
    message = str(error.value)
    assert str(path) in message and "layer site1.bn" in message
    assert "layers/site1.bn/c/2/0" in message and "checksum" in message
    assert "c/1/0" not in message and "c/3/0" not in message  # only the bad chunk is named


def test_truncated_chunk_names_the_layer_and_chunk(tmp_path):
    path = write(tmp_path / "s.zarr", random_layers(20, [3, 4]), np.arange(20) % 2, chunk_bytes=40)
    chunk = path / "layers" / "site0.bn" / "c" / "0" / "0"
    chunk.write_bytes(chunk.read_bytes()[:9])
    with pytest.raises(CorruptStoreError, match=r"layer site0\.bn is corrupt: layers/site0\.bn/c/0/0"):
        open_store(path).layers()


def test_corrupt_label_array_fails_on_open(tmp_path):
    path = write(tmp_path / "s.zarr", random_layers(20, [3]), np.arange(20) % 2)
    flip_byte(path / "fine" / "c" / "0", offset=5)
    with pytest.raises(CorruptStoreError, match=r"array fine is corrupt: fine/c/0"):
        open_store(path)


def test_store_without_checksums_still_reads_with_a_warning(tmp_path, caplog):
    """A store written before the checksum codec existed (zstd only) is still accepted."""
    layers = random_layers(20, [3])
    path = write(tmp_path / "s.zarr", layers, np.arange(20) % 2, chunk_bytes=40)
    group = zarr.open_group(path, mode="r+")
    for key in ("fine", "indices", "layers/site0.bn"):  # rewrite each array without the crc
        old = group[key]
        values = old[...]
        del group[key]
        group.create_array(key, shape=old.shape, chunks=old.chunks, dtype=old.dtype,
                           fill_value=old.fill_value, compressors=[ZstdCodec(level=3)])[...] = values
    with caplog.at_level(logging.WARNING, logger="intraclass.activations"):
        store = open_store(path)
    assert "no chunk checksums" in caplog.text
    np.testing.assert_array_equal(store.layer("site0.bn"), layers[0])


def test_new_writer_removes_partial_stores_of_killed_jobs(tmp_path):
    path = tmp_path / "s.zarr"
    stale = [tmp_path / ".s.zarr.partial-999999", tmp_path / ".s.zarr.partial-1", tmp_path / ".s.zarr.old-7"]
    for leftover in stale:
        (leftover / "layers").mkdir(parents=True)
    other = tmp_path / ".t.zarr.partial-5"  # another store's: left alone
    other.mkdir()
    write(path, random_layers(10, [2]), np.zeros(10, int))
    assert sorted(p.name for p in tmp_path.iterdir()) == [".t.zarr.partial-5", "s.zarr"]


def test_writer_rejects_bad_input(tmp_path):
    with pytest.raises(ValueError, match="dtype"):
        StoreWriter(tmp_path / "s.zarr", [("a", 2)], 3, fine=[0, 1, 2], dtype="int8")
    with pytest.raises(ValueError, match="compressor"):
        StoreWriter(tmp_path / "s.zarr", [("a", 2)], 3, fine=[0, 1, 2], compressor="gzip")
    with pytest.raises(ValueError, match="unique"):
        StoreWriter(tmp_path / "s.zarr", [("a", 2), ("a", 3)], 3, fine=[0, 1, 2])
    with pytest.raises(ValueError, match="fine must be 3 integers"):
        StoreWriter(tmp_path / "s.zarr", [("a", 2)], 3, fine=[0.5, 1, 2])
    assert list(tmp_path.iterdir()) == []


# ------------------------------------------------------------------------- pipeline


def test_write_preactivations_streams_model_to_store(tmp_path, images):
    model = TinyNet()
    indices = np.arange(1, 23, 2)  # 11 samples, batches of 4: the last batch is short
    fine = np.arange(11) % 3
    path = write_preactivations(tmp_path / "a.zarr", model, images, indices, fine, None, to_input,
                                sites=model.sites(), batch_size=4, device=CPU, chunk_bytes=48,
                                attrs={"checkpoint": "final"})
    store = open_store(path)
    np.testing.assert_array_equal(store.indices, indices)
    assert store.layer_names == ["bn1", "bn2", "bn3"] and store.attrs["checkpoint"] == "final"
    with torch.inference_mode():
        manual = model.eval().manual_preactivations(to_input(torch.from_numpy(images[indices])))
    for got, want in zip(store.layers(), manual):
        np.testing.assert_allclose(got, want.numpy(), rtol=1e-5, atol=1e-5)


# ------------------------------------------------------------------------- stage


@pytest.fixture
def dataset():
    from intraclass.data.toy import make_synthetic

    return make_synthetic(seed=0, n_super=2, n_sub=2, per_class=12, test_per_class=5, size=8)


def test_extraction_indices_subsample_the_training_set(dataset):
    from intraclass.activations import extraction_indices
    from intraclass.data import training_indices

    train_index = training_indices(dataset, 8, 0)
    chosen = extraction_indices(dataset, "train", 3, 1, train_index)
    assert len(chosen) == 12 and np.all(np.diff(chosen) > 0)
    assert set(chosen) <= set(train_index)
    np.testing.assert_array_equal(np.bincount(dataset.y_train[chosen]), [3, 3, 3, 3])
    np.testing.assert_array_equal(chosen, extraction_indices(dataset, "train", 3, 1, train_index))
    assert not np.array_equal(chosen, extraction_indices(dataset, "train", 3, 2, train_index))
    np.testing.assert_array_equal(extraction_indices(dataset, "train", None, 1, train_index),
                                  train_index)
    np.testing.assert_array_equal(extraction_indices(dataset, "test", None, 0, train_index),
                                  np.arange(20))
    with pytest.raises(ValueError, match="split"):
        extraction_indices(dataset, "val", None, 0, train_index)


EXTRACT = {"split": "train", "per_class": 5, "dtype": "float32", "batch_size": 7,
           "compressor": "zstd", "seed": 3}
TRAINING = {"train_per_class": 10, "data_seed": 0, "device": "cpu"}


def training_normalization(dataset):
    """What training stores in a checkpoint, computed independently with numpy: per-channel
    mean and std of the training subset (TRAINING: 10 per class, seed 0) in [0, 1]."""
    from intraclass.data import training_indices

    subset = dataset.x_train[training_indices(dataset, 10, 0)] / 255.0
    return {"mean": subset.mean(axis=(0, 1, 2)).tolist(), "std": subset.std(axis=(0, 1, 2)).tolist()}


def manual_store_values(model, dataset, indices):
    """Independent expectation: numpy standardization over the training subset, then hooks."""
    from intraclass.models import measured_sites

    norm = training_normalization(dataset)
    mean, std = np.array(norm["mean"]), np.array(norm["std"])
    x = (dataset.x_train[indices] / 255.0 - mean) / std
    x = torch.from_numpy(x.transpose(0, 3, 1, 2).astype(np.float32))
    with SiteRecorder(measured_sites(model)) as recorder, torch.inference_mode():
        model.eval()(x)
        return [t.numpy() for t in recorder.pop()]


def test_extract_checkpoint_final_and_epoch(tmp_path, dataset):
    from intraclass.activations import extract_checkpoint
    from intraclass.data import save_dataset
    from intraclass.models import build_model, load_checkpoint, save_checkpoint

    data = save_dataset(dataset, tmp_path / "toy.npz")
    spec = dict(arch="resnet", num_classes=4, in_channels=1, base_width=2)
    for seed, where, epoch in ((0, tmp_path / "model.pt", 9), (1, tmp_path / "ckpt" / "epoch1.pt", 1)):
        torch.manual_seed(seed)
        save_checkpoint(where, build_model(**spec), spec, {"id": "toy-model"}, "fine", epoch,
                        normalization=training_normalization(dataset))

    final = extract_checkpoint(tmp_path / "model.pt", data, tmp_path / "act" / "final.zarr",
                               checkpoint="final", extract=EXTRACT, training=TRAINING)
    early = extract_checkpoint(tmp_path / "ckpt", data, tmp_path / "act" / "epoch1.zarr",
                               checkpoint="epoch1", extract={**EXTRACT, "dtype": "float16"},
                               training=TRAINING)
    stores = {name: open_store(path) for name, path in (("final", final), ("epoch1", early))}
    for name, store in stores.items():
        assert len(store) == 20  # 5 per class of the 4 classes
        np.testing.assert_array_equal(store.fine, dataset.y_train[store.indices])
        np.testing.assert_array_equal(store.coarse, dataset.coarse_train[store.indices])
        assert store.attrs["checkpoint"] == name and store.attrs["model_id"] == "toy-model"
        assert store.attrs["sample_source"]["per_class"] == 5
        assert store.attrs["coarse_names"] == dataset.coarse_names
    np.testing.assert_array_equal(stores["final"].indices, stores["epoch1"].indices)
    assert stores["final"].attrs["epoch"] == 9 and stores["epoch1"].attrs["epoch"] == 1
    for name, ckpt, tol in (("final", "model.pt", 1e-4), ("epoch1", "ckpt/epoch1.pt", 2e-3)):
        model, _ = load_checkpoint(tmp_path / ckpt)
        want = manual_store_values(model, dataset, stores[name].indices)
        for got, expected in zip(stores[name].layers(), want):
            np.testing.assert_allclose(got, expected, rtol=tol, atol=tol)
    with pytest.raises(ValueError, match="checkpoint must be"):
        extract_checkpoint(tmp_path / "ckpt", data, tmp_path / "x.zarr", checkpoint="last",
                           extract=EXTRACT, training=TRAINING)
    with pytest.raises(KeyError, match="params.extract lacks seed"):
        extract_checkpoint(tmp_path / "model.pt", data, tmp_path / "x.zarr", checkpoint="final",
                           extract={k: v for k, v in EXTRACT.items() if k != "seed"},
                           training=TRAINING)
    assert not (tmp_path / "x.zarr").exists()


def test_extract_script_runs_the_stage(tmp_path, dataset):
    import runpy
    from types import SimpleNamespace

    from intraclass.data import save_dataset
    from intraclass.models import build_model, save_checkpoint

    data = save_dataset(dataset, tmp_path / "toy.npz")
    spec = dict(arch="vgg", num_classes=4, in_channels=1, base_width=2)
    save_checkpoint(tmp_path / "model.pt", build_model(**spec), spec, {"id": "m"}, "fine", 2,
                    normalization=training_normalization(dataset))
    out = tmp_path / "act" / "final.zarr"
    metrics = tmp_path / "metrics.json"
    metrics.write_text('{"status": "ok", "reason": null}\n')
    snakemake = SimpleNamespace(
        input=SimpleNamespace(weights=str(tmp_path / "model.pt"), data=str(data), metrics=str(metrics)),
        output=SimpleNamespace(store=str(out)), log=[str(tmp_path / "extract.log")], threads=1,
        # run-only settings (device, batch size) come from the config, not params
        params=SimpleNamespace(
            checkpoint="final",
            extract={k: v for k, v in EXTRACT.items() if k != "batch_size"},
            training={k: v for k, v in TRAINING.items() if k != "device"}),
        wildcards=SimpleNamespace(study="s"),
        config={"studies": {"s": {
            "extract": {"batch_size": EXTRACT["batch_size"]},
            "training": {"device": "cpu", "eval_batch_size": 100, "resume_every": 1}}}})
    script = Path(__file__).parents[1] / "workflow" / "scripts" / "extract.py"
    root = logging.getLogger()
    handlers, level, hook = list(root.handlers), root.level, sys.excepthook
    try:  # the script configures process-wide logging: restore it for the other tests
        runpy.run_path(str(script), init_globals={"snakemake": snakemake})
    finally:
        for handler in root.handlers:
            if handler not in handlers:
                handler.close()
        root.handlers[:], sys.excepthook = handlers, hook
        root.setLevel(level)
    assert len(open_store(out)) == 20
    assert "20/20 samples" in (tmp_path / "extract.log").read_text()


def test_too_large_extraction_subset_names_the_setting(dataset):
    from intraclass.activations import extraction_indices
    from intraclass.data import DatasetError, training_indices

    train_index = training_indices(dataset, 10, 0)
    with pytest.raises(DatasetError, match=r"extract\.per_class in the config"):
        extraction_indices(dataset, "train", 11, 0, train_index)
