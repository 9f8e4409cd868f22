"""Device-side augmentation and the training loop: learning, determinism, resume, outputs."""

import csv
import json
import logging
import sys
import types

import numpy as np
import pytest
import torch

from intraclass.augment import (
    MAX_SHIFT,
    Normalizer,
    channel_stats,
    random_shift_flip,
    reflect_index,
    shift_flip,
)
from intraclass.models import load_checkpoint
from intraclass.train import TrainData, TrainOutputs, run_training, train

# ---------------------------------------------------------------- augmentation

def reference_shift_flip(image: np.ndarray, dy: int, dx: int, flip: int) -> np.ndarray:
    """torchvision's recipe, one image: reflect-pad by 4, crop at (4+dy, 4+dx), flip."""
    h, w = image.shape[:2]
    padded = np.pad(image, ((MAX_SHIFT, MAX_SHIFT), (MAX_SHIFT, MAX_SHIFT), (0, 0)), mode="reflect")
    crop = padded[MAX_SHIFT + dy:MAX_SHIFT + dy + h, MAX_SHIFT + dx:MAX_SHIFT + dx + w]
    return crop[:, ::-1] if flip else crop


@pytest.mark.parametrize("shape", [(9, 7, 7, 1), (16, 8, 8, 3), (5, 12, 10, 2)])
def test_shift_flip_matches_pad_crop_reference(shape):
    rng = np.random.default_rng(0)
    images = rng.integers(0, 256, shape, dtype=np.uint8)
    params = random_shift_flip(shape[0], torch.Generator().manual_seed(1))
    out = shift_flip(torch.from_numpy(images), params).numpy()
    for n, (dy, dx, flip) in enumerate(params.tolist()):
        np.testing.assert_array_equal(out[n], reference_shift_flip(images[n], dy, dx, flip))


def test_reflection_fill_on_a_known_image():
    """Row r of a ramp image holds value r: shifting down by 2 reflects rows 2, 1 on top."""
    ramp = torch.arange(6, dtype=torch.uint8)[None, :, None, None].expand(1, 6, 4, 1).clone()
    down = shift_flip(ramp, torch.tensor([[-2, 0, 0]]))[0, :, 0, 0].tolist()
    assert down == [2, 1, 0, 1, 2, 3]
    up = shift_flip(ramp, torch.tensor([[3, 0, 0]]))[0, :, 0, 0].tolist()
    assert up == [3, 4, 5, 4, 3, 2]
    cols = torch.arange(5, dtype=torch.uint8)[None, None, :, None].expand(1, 2, 5, 1).clone()
    flipped = shift_flip(cols, torch.tensor([[0, 0, 1]]))[0, 0, :, 0].tolist()
    assert flipped == [4, 3, 2, 1, 0]
    right_then_flip = shift_flip(cols, torch.tensor([[0, 1, 1]]))[0, 0, :, 0].tolist()
    assert right_then_flip == [3, 4, 3, 2, 1]


@pytest.mark.parametrize("size", [1, 2, 3, 5])
def test_reflect_index_any_size(size):
    """Periodic reflection equals numpy's reflect padding, even for pads beyond the size."""
    positions = torch.arange(-MAX_SHIFT, size + MAX_SHIFT)
    expected = np.pad(np.arange(size), MAX_SHIFT, mode="reflect") if size > 1 else np.zeros(
        size + 2 * MAX_SHIFT, dtype=int)
    assert reflect_index(positions, size).tolist() == expected.tolist()


def test_augmentation_parameters_bounds_and_spread():
    params = random_shift_flip(20000, torch.Generator().manual_seed(0))
    assert params[:, :2].min() == -MAX_SHIFT and params[:, :2].max() == MAX_SHIFT
    assert set(params[:, 2].unique().tolist()) == {0, 1}
    assert abs(params[:, 2].float().mean().item() - 0.5) < 0.02
    # every row of an augmented image is a (reflected) row within 4 px of its own
    image = torch.arange(10, dtype=torch.uint8)[None, :, None, None].expand(64, 10, 3, 1)
    out = shift_flip(image.contiguous(), params[:64])[:, :, 0, 0].long()
    rows = torch.arange(10)
    assert (reflect_index(rows[None] + params[:64, :1], 10) == out).all()


def test_normalizer_standardizes_and_keeps_channels_last():
    rng = np.random.default_rng(0)
    images = rng.integers(0, 256, (50, 6, 6, 3), dtype=np.uint8)
    images[..., 2] = 7  # constant channel: std 1, never a division by zero
    mean, std = channel_stats(images)
    np.testing.assert_allclose(mean, images.reshape(-1, 3).mean(0) / 255)
    np.testing.assert_allclose(std[:2], images.reshape(-1, 3)[:, :2].std(0) / 255)
    assert std[2] == 1.0
    x = Normalizer(mean, std, torch.device("cpu"))(torch.from_numpy(images))
    assert x.shape == (50, 3, 6, 6) and x.dtype == torch.float32
    assert x.is_contiguous(memory_format=torch.channels_last)
    np.testing.assert_allclose(x[:, :2].mean((0, 2, 3)).numpy(), 0, atol=1e-5)
    np.testing.assert_allclose(x[:, :2].std((0, 2, 3), unbiased=False).numpy(), 1, atol=1e-5)
    y = Normalizer(mean, std, torch.device("cpu"), contiguous=True)(torch.from_numpy(images))
    assert y.is_contiguous() and torch.equal(x, y)


# ---------------------------------------------------------------- training

def blob_task(n_per_class=40, n_test_per_class=20, size=8, seed=0) -> TrainData:
    """4 classes: a bright 3x3 blob in the image's quadrant c, on noise (separable)."""
    rng = np.random.default_rng(seed)

    def make(n):
        labels = np.repeat(np.arange(4), n)
        images = rng.integers(0, 80, (len(labels), size, size, 1))
        half = size // 2
        for i, c in enumerate(labels):
            r, q = divmod(int(c), 2)
            y0 = r * half + rng.integers(0, half - 2)
            x0 = q * half + rng.integers(0, half - 2)
            images[i, y0:y0 + 3, x0:x0 + 3] = 255
        return images.astype(np.uint8), labels.astype(np.int64)

    x_train, y_train = make(n_per_class)
    x_test, y_test = make(n_test_per_class)
    return TrainData(x_train, y_train, x_test, y_test, num_classes=4)


MODEL = dict(id="tiny", lr=0.05, weight_decay=1e-4, batch_size=32, optimizer="sgd",
             dropout=0.0, augment=False, width=1.0, depth=1.0, seed=0)
ARCH = dict(name="vgg", base_width=4)
TRAINING = dict(epochs=4, lr_milestones=[3], lr_gamma=0.2, stop_loss=1e-4, train_per_class=None,
                data_seed=0, device="cpu", eval_batch_size=64, resume_every=1)


def outputs_in(directory) -> TrainOutputs:
    return TrainOutputs(model=directory / "model.pt", metrics=directory / "metrics.json",
                        history=directory / "history.csv", ckpt=directory / "ckpt")


def stable(metrics: dict) -> dict:
    """Metrics without the timing, which legitimately differ between runs."""
    return {k: v for k, v in metrics.items() if k not in ("wall_time_s", "resumed_from_epoch")}


def read_history(path):
    with open(path) as handle:
        rows = list(csv.DictReader(handle))
    for row in rows:
        row.pop("seconds")
    return rows


def test_tiny_run_learns_and_writes_outputs(tmp_path):
    data = blob_task()
    out = outputs_in(tmp_path)
    metrics = train(data, MODEL, ARCH, "fine",
                    dict(TRAINING, epochs=8, lr_milestones=[6]), out, checkpoint_epochs=[0, 2])
    assert metrics["test_acc"] > 0.8  # chance is 0.25
    assert metrics["train_acc"] > 0.8
    assert metrics["epochs_run"] == 8 and metrics["early_stopped"] is False
    assert json.loads(out.metrics.read_text())["test_acc"] == metrics["test_acc"]
    history = read_history(out.history)
    assert [int(r["epoch"]) for r in history] == list(range(1, 9))
    assert [float(r["lr"]) for r in history] == [0.05] * 6 + [pytest.approx(0.01)] * 2
    assert float(history[-1]["train_loss"]) < float(history[0]["train_loss"])
    assert sorted(p.name for p in out.ckpt.iterdir()) == ["epoch0.pt", "epoch2.pt"]
    _model, ckpt = load_checkpoint(out.model)
    assert ckpt["epoch"] == 8 and ckpt["labels"] == "fine" and ckpt["hparams"] == MODEL
    assert ckpt["arch_spec"]["base_width"] == 4 and ckpt["arch_spec"]["in_channels"] == 1
    _, early = load_checkpoint(out.ckpt / "epoch2.pt")
    assert early["epoch"] == 2
    # every checkpoint carries the input normalization of training (the training set's stats)
    mean, std = channel_stats(data.x_train)
    for stored in (ckpt, early):
        assert stored["normalization"] == {"mean": mean.tolist(), "std": std.tolist()}
    images = torch.from_numpy(data.x_test[:5])
    assert torch.equal(Normalizer.from_checkpoint(ckpt, torch.device("cpu"))(images),
                       Normalizer(mean, std, torch.device("cpu"))(images))
    assert not out.resume.exists()
    assert not list(tmp_path.rglob(".*partial*"))


def test_same_seed_same_metrics_other_seed_differs(tmp_path):
    data = blob_task(n_per_class=16, n_test_per_class=8)
    model = dict(MODEL, augment=True, dropout=0.2)
    training = dict(TRAINING, epochs=2)
    a = train(data, model, ARCH, "fine", training, outputs_in(tmp_path / "a"))
    b = train(data, model, ARCH, "fine", training, outputs_in(tmp_path / "b"))
    c = train(data, dict(model, seed=1), ARCH, "fine", training, outputs_in(tmp_path / "c"))
    assert stable(a) == stable(b)
    assert read_history(tmp_path / "a" / "history.csv") == read_history(tmp_path / "b" / "history.csv")
    assert a["train_loss"] != c["train_loss"]


class Killed(Exception):
    """Stands in for the job being killed between two epochs."""


@pytest.mark.parametrize("arch", ["vgg", "resnet"])
def test_resume_after_kill_equals_uninterrupted_bitwise(tmp_path, arch):
    data = blob_task(n_per_class=16, n_test_per_class=8)
    model = dict(MODEL, augment=True, dropout=0.2, optimizer="sgd")
    training = dict(TRAINING, epochs=5, lr_milestones=[2, 4], resume_every=2)
    arch = dict(ARCH, name=arch)
    full = train(data, model, arch, "fine", training, outputs_in(tmp_path / "full"), [1, 3])

    out = outputs_in(tmp_path / "killed")

    def kill_after_3(epoch):
        if epoch == 3:
            raise Killed

    with pytest.raises(Killed):
        train(data, model, arch, "fine", training, out, [1, 3], on_epoch_end=kill_after_3)
    assert out.resume.exists() and not out.model.exists()
    assert torch.load(out.resume, weights_only=True)["epoch"] == 2  # resume_every=2
    for stale in out.ckpt.iterdir():  # Snakemake removes a failed job's outputs
        stale.unlink()
    resumed = train(data, model, arch, "fine", training, out, [1, 3])
    assert resumed["resumed_from_epoch"] == 2
    assert stable(resumed) == stable(full)
    assert read_history(out.history) == read_history(tmp_path / "full" / "history.csv")
    for name in ("model.pt", "ckpt/epoch1.pt", "ckpt/epoch3.pt"):
        a = torch.load(tmp_path / "full" / name, weights_only=True)["state_dict"]
        b = torch.load(tmp_path / "killed" / name, weights_only=True)["state_dict"]
        assert all(torch.equal(a[k], b[k]) for k in a), name
    assert not out.resume.exists()


def test_corrupt_or_foreign_resume_state_starts_over(tmp_path, caplog):
    data = blob_task(n_per_class=8, n_test_per_class=4)
    training = dict(TRAINING, epochs=2)
    fresh = train(data, MODEL, ARCH, "fine", training, outputs_in(tmp_path / "fresh"))
    out = outputs_in(tmp_path / "corrupt")
    out.resume.parent.mkdir(parents=True)
    out.resume.write_bytes(b"\x00garbage")
    with caplog.at_level(logging.WARNING):
        again = train(data, MODEL, ARCH, "fine", training, out)
    assert "unreadable" in caplog.text and str(out.resume) in caplog.text
    assert stable(again) == stable(fresh) and again["resumed_from_epoch"] is None

    # a resume state of another configuration (other lr) is never mixed in
    other = outputs_in(tmp_path / "other")
    with pytest.raises(Killed):
        train(data, dict(MODEL, lr=0.5), ARCH, "fine", training, other,
              on_epoch_end=lambda e: (_ for _ in ()).throw(Killed))
    caplog.clear()
    with caplog.at_level(logging.WARNING):
        mixed = train(data, MODEL, ARCH, "fine", training, other)
    assert "another configuration" in caplog.text
    assert stable(mixed) == stable(fresh)


def test_early_stop_fills_later_checkpoints_with_final_weights(tmp_path):
    data = blob_task(n_per_class=8, n_test_per_class=4)
    out = outputs_in(tmp_path)
    metrics = train(data, MODEL, ARCH, "fine", dict(TRAINING, stop_loss=100.0), out, [1, 3])
    assert metrics["early_stopped"] is True and metrics["epochs_run"] == 1
    assert metrics["checkpoints_from_final_weights"] == {"3": 1}
    one = torch.load(out.ckpt / "epoch1.pt", weights_only=True)
    three = torch.load(out.ckpt / "epoch3.pt", weights_only=True)
    assert three["epoch"] == 1 and three["requested_epoch"] == 3
    assert all(torch.equal(one["state_dict"][k], v) for k, v in three["state_dict"].items())


def test_bad_inputs_are_named(tmp_path):
    data = blob_task(n_per_class=2, n_test_per_class=1)
    with pytest.raises(KeyError, match="params.model lacks seed"):
        train(data, {k: v for k, v in MODEL.items() if k != "seed"}, ARCH, "fine", TRAINING,
              outputs_in(tmp_path))
    with pytest.raises(ValueError, match="optimizer"):
        train(data, dict(MODEL, optimizer="rmsprop"), ARCH, "fine", TRAINING, outputs_in(tmp_path))
    with pytest.raises(ValueError, match="x_train must be uint8"):
        TrainData(data.x_train.astype(np.float32), data.y_train, data.x_test, data.y_test, 4)
    with pytest.raises(ValueError, match="test labels outside"):
        TrainData(data.x_train, data.y_train, data.x_test, data.y_test + 4, 4)
    assert not (tmp_path / "model.pt").exists()


def test_run_training_uses_subset_and_label_level(tmp_path, monkeypatch):
    """run_training with a stand-in for intraclass.data (docs/stages.md contract)."""
    full = blob_task(n_per_class=12, n_test_per_class=4)
    coarse_train, coarse_test = full.y_train // 2, full.y_test // 2
    calls = {}

    class Dataset:
        x_train, x_test = full.x_train, full.x_test
        fine_names, coarse_names = ["a", "b", "c", "d"], ["ab", "cd"]

        def labels(self, split, level):
            return {("train", "fine"): full.y_train, ("train", "coarse"): coarse_train,
                    ("test", "fine"): full.y_test, ("test", "coarse"): coarse_test}[split, level]

    def training_indices(dataset, per_class, seed):
        calls["args"] = (per_class, seed)
        return np.sort(np.concatenate([np.flatnonzero(full.y_train == c)[:per_class]
                                       for c in range(4)]))

    stand_in = types.ModuleType("intraclass.data")
    stand_in.load_dataset = lambda path: Dataset()
    stand_in.training_indices = training_indices
    monkeypatch.setitem(sys.modules, "intraclass.data", stand_in)
    training = dict(TRAINING, epochs=1, train_per_class=5, data_seed=3)
    metrics = run_training("unused.npz", outputs_in(tmp_path), MODEL, ARCH, "coarse", training)
    assert calls["args"] == (5, 3)
    assert metrics["n_train"] == 20 and metrics["n_test"] == 16 and metrics["num_classes"] == 2
    _, ckpt = load_checkpoint(tmp_path / "model.pt")
    assert ckpt["arch_spec"]["num_classes"] == 2 and ckpt["labels"] == "coarse"
    with pytest.raises(ValueError, match="labels"):
        run_training("unused.npz", outputs_in(tmp_path), MODEL, ARCH, "super", training)


def test_gpu_style_path_runs_on_cpu():
    """The CUDA settings (bf16 autocast, channels_last model and inputs) on the CPU backend."""
    from intraclass.models import build_model
    from intraclass.train import evaluate_examples, train_epoch

    data = blob_task(n_per_class=8, n_test_per_class=4)
    torch.manual_seed(0)
    model = build_model("resnet", 4, 1, base_width=4).to(memory_format=torch.channels_last)
    optimizer = torch.optim.SGD(model.parameters(), lr=0.05, momentum=0.9)
    normalize = Normalizer(*channel_stats(data.x_train), torch.device("cpu"), contiguous=False)
    x, y = torch.from_numpy(data.x_train), torch.from_numpy(data.y_train)
    loss, acc = train_epoch(model, optimizer, x, y, normalize, torch.Generator().manual_seed(0),
                            batch_size=10, augment=True, autocast=True)
    assert np.isfinite(loss) and 0.0 <= acc <= 1.0
    correct, eval_loss = evaluate_examples(model, x, y, normalize, batch_size=7, autocast=True)
    assert np.isfinite(eval_loss) and correct.shape == (len(y),) and correct.dtype == bool


# ---------------------------------------------------------------- outputs for later stages

def test_init_checkpoint_holds_the_weights_before_any_step(tmp_path):
    """init.pt: the seeded initial weights (epoch 0), loadable like any checkpoint; equal
    to a requested epoch-0 checkpoint and to a model built from the same seed."""
    from intraclass.models import build_model

    data = blob_task(n_per_class=8, n_test_per_class=4)
    out = outputs_in(tmp_path)
    train(data, MODEL, ARCH, "fine", dict(TRAINING, epochs=2), out, checkpoint_epochs=[0])
    init = torch.load(out.init, weights_only=True)
    assert out.init == tmp_path / "init.pt"
    assert init["epoch"] == 0 and init["hparams"] == MODEL and "normalization" in init
    model, _ = load_checkpoint(out.init)
    torch.manual_seed(MODEL["seed"])
    fresh = build_model(**init["arch_spec"]).state_dict()
    final = torch.load(out.model, weights_only=True)["state_dict"]
    epoch0 = torch.load(out.ckpt / "epoch0.pt", weights_only=True)["state_dict"]
    for name, value in model.state_dict().items():
        assert torch.equal(value, fresh[name]) and torch.equal(value, epoch0[name]), name
    assert any(not torch.equal(init["state_dict"][k], final[k]) for k in final)


def test_test_correct_is_the_per_example_test_accuracy(tmp_path):
    data = blob_task(n_per_class=16, n_test_per_class=10)
    out = outputs_in(tmp_path)
    metrics = train(data, MODEL, ARCH, "fine", dict(TRAINING, epochs=3), out)
    correct = np.load(out.test_correct)
    assert out.test_correct == tmp_path / "test_correct.npy"
    assert correct.dtype == bool and correct.shape == (len(data.y_test),)
    assert correct.mean() == metrics["test_acc"]  # exactly: the same evaluation pass
    assert 0 < correct.sum() < len(correct)  # a real mix, not a constant
    # against a plain float32 forward pass of the saved model, image by image
    model, ckpt = load_checkpoint(out.model)
    normalize = Normalizer.from_checkpoint(ckpt, torch.device("cpu"), contiguous=True)
    with torch.no_grad():
        expected = [model(normalize(torch.from_numpy(data.x_test[i:i + 1]))).argmax(1).item()
                    == data.y_test[i] for i in range(len(data.y_test))]
    assert correct.tolist() == expected
    assert metrics["status"] == "ok" and metrics["reason"] is None


def test_metrics_record_device_threads_and_versions(tmp_path):
    data = blob_task(n_per_class=4, n_test_per_class=2)
    metrics = train(data, MODEL, ARCH, "fine", dict(TRAINING, epochs=1, threads=1),
                    outputs_in(tmp_path))
    stored = json.loads((tmp_path / "metrics.json").read_text())
    assert stored["device"] == "cpu" and stored["threads"] == 1
    assert stored["deterministic"] is False
    assert stored["torch_version"] == torch.__version__ and stored["numpy_version"] == np.__version__
    assert stored["python_version"] == ".".join(map(str, sys.version_info[:3]))
    assert metrics["threads"] == 1


def test_thread_count_is_applied_recorded_and_part_of_the_configuration(tmp_path):
    """1 vs 2 torch threads: each run applies and records its count, and a resume state
    of one count is never continued by the other (the count defines the result). The
    caller's thread count is restored afterwards."""
    data = blob_task(n_per_class=16, n_test_per_class=8)
    seen = {}
    before = torch.get_num_threads()
    for threads in (1, 2):
        out = outputs_in(tmp_path / str(threads))
        metrics = train(data, MODEL, ARCH, "fine", dict(TRAINING, epochs=2, threads=threads),
                        out, on_epoch_end=lambda e, t=threads: seen.setdefault(t, torch.get_num_threads()))
        assert metrics["threads"] == threads == seen[threads]
        assert json.loads(out.metrics.read_text())["threads"] == threads
        assert torch.get_num_threads() == before
    # a run with 2 threads killed after epoch 1 is not resumed by a run with 1 thread
    out = outputs_in(tmp_path / "switch")
    with pytest.raises(Killed):
        train(data, MODEL, ARCH, "fine", dict(TRAINING, epochs=2, threads=2), out,
              on_epoch_end=lambda e: (_ for _ in ()).throw(Killed))
    assert out.resume.exists()
    one = train(data, MODEL, ARCH, "fine", dict(TRAINING, epochs=2, threads=1), out)
    assert one["resumed_from_epoch"] is None and one["threads"] == 1
    weights = [torch.load(tmp_path / d / "model.pt", weights_only=True)["state_dict"]
               for d in ("1", "switch")]
    assert all(torch.equal(weights[0][k], weights[1][k]) for k in weights[0])


def test_a_diverging_model_is_recorded_not_raised(tmp_path, caplog):
    """lr 1e12 SGD: the loss becomes non-finite within a few epochs. Training stops there
    and writes every output: status diverged with the reason, null accuracies (valid
    JSON), an all-False test_correct, checkpoints not reached filled with the final weights."""
    data = blob_task(n_per_class=8, n_test_per_class=5)
    out = outputs_in(tmp_path)
    with caplog.at_level(logging.WARNING):
        metrics = train(data, dict(MODEL, lr=1e12), ARCH, "fine", dict(TRAINING, epochs=6), out, [5])
    stopped = metrics["epochs_run"]
    assert metrics["status"] == "diverged" and stopped < 5
    assert metrics["reason"] == f"training loss nan at epoch {stopped} (lr 1e+12)"
    text = out.metrics.read_text()
    assert "NaN" not in text and "Infinity" not in text
    stored = json.loads(text)
    assert stored["status"] == "diverged" and stored["reason"] == metrics["reason"]
    assert stored["test_acc"] is None and stored["train_loss"] is None
    correct = np.load(out.test_correct)
    assert correct.shape == (len(data.y_test),) and not correct.any()
    assert out.model.exists() and out.init.exists() and (out.ckpt / "epoch5.pt").exists()
    assert metrics["checkpoints_from_final_weights"] == {"5": stopped}
    assert len(read_history(out.history)) == stopped and not out.resume.exists()
    assert "diverged" in caplog.text


@pytest.mark.filterwarnings(r"ignore:Detected call of `lr_scheduler.step\(\)`")
def test_non_finite_weights_count_as_divergence(tmp_path, monkeypatch):
    """A finite loss with a NaN weight afterwards (stand-in epoch) is a divergence too."""
    import intraclass.train as T

    def poisoned_epoch(model, *args, **kwargs):
        with torch.no_grad():
            next(model.parameters()).view(-1)[0] = float("nan")
        return 0.5, 0.5

    monkeypatch.setattr(T, "train_epoch", poisoned_epoch)
    data = blob_task(n_per_class=4, n_test_per_class=2)
    metrics = train(data, MODEL, ARCH, "fine", dict(TRAINING, epochs=3), outputs_in(tmp_path))
    assert metrics["status"] == "diverged" and metrics["epochs_run"] == 1
    assert "non-finite weights after epoch 1" in metrics["reason"]
    assert "stages.0.0.conv.weight" in metrics["reason"]


def test_non_finite_final_loss_counts_as_divergence(tmp_path, monkeypatch):
    """Finite training but a non-finite final evaluation loss (logits overflow): status
    diverged; the accuracies measured are kept, and test_correct is the real one."""
    import intraclass.train as T

    real = T.evaluate_examples

    def overflowing(*args, **kwargs):
        correct, _ = real(*args, **kwargs)
        return correct, float("inf")

    monkeypatch.setattr(T, "evaluate_examples", overflowing)
    data = blob_task(n_per_class=4, n_test_per_class=3)
    out = outputs_in(tmp_path)
    metrics = train(data, MODEL, ARCH, "fine", dict(TRAINING, epochs=1), out)
    assert metrics["status"] == "diverged"
    assert metrics["reason"] == "final evaluation after epoch 1: train loss inf, test loss inf"
    stored = json.loads(out.metrics.read_text())
    assert stored["test_loss"] is None and stored["test_acc"] == np.load(out.test_correct).mean()


def test_corrupt_resume_state_message_has_no_unsafe_advice(tmp_path, caplog):
    """A resume file holding a non-tensor object fails the weights-only load: the log says
    so without PyTorch's advice to retry with weights_only=False."""
    data = blob_task(n_per_class=4, n_test_per_class=2)
    out = outputs_in(tmp_path)
    out.resume.parent.mkdir(parents=True, exist_ok=True)
    torch.save({"fingerprint": Killed("not a tensor")}, out.resume)
    with caplog.at_level(logging.WARNING):
        train(data, MODEL, ARCH, "fine", dict(TRAINING, epochs=1), out)
    assert "unreadable" in caplog.text and "WeightsUnpickler error" in caplog.text
    assert "weights_only=False" not in caplog.text and "weights_only` set to `False" not in caplog.text


def test_checkpoint_with_unsafe_objects_fails_without_unsafe_advice(tmp_path):
    """read_checkpoint on a file the weights-only load refuses: a ValueError naming the
    file and the refused object, no advice to retry with weights_only=False, and no
    chained exception that would print that advice in the job's log."""
    from intraclass.models import read_checkpoint

    path = tmp_path / "model.pt"
    torch.save({"state_dict": {}, "payload": Killed("not plain")}, path)
    with pytest.raises(ValueError, match="is corrupt or not a checkpoint") as caught:
        read_checkpoint(path)
    message = str(caught.value)
    assert str(path) in message and "Killed" in message
    assert "weights_only=False" not in message and "`False`" not in message
    assert caught.value.__cause__ is None and caught.value.__suppress_context__
