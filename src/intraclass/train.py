"""Training of one model of the grid (paper appendix A.1-A.3), resumable and deterministic.

One code path for CPU and GPU: the training set sits on the device as uint8, batches
are cut, augmented (:mod:`intraclass.augment`) and normalized there; on CUDA the forward
pass runs under bf16 autocast with channels_last tensors. Per epoch the loop draws one
permutation and the augmentation parameters of every sample from a CPU
``torch.Generator`` seeded with the model seed, so an epoch's randomness is fixed by
the generator state at its start.

Procedure (appendix A.2-A.3): SGD with momentum 0.9 at ``lr``, or Adam at ``lr / 100``;
``weight_decay`` is PyTorch's (``wd * w`` added to every parameter's gradient; a Keras
``l2(c)`` regularizer on kernels is ``wd = 2c``); cross-entropy; ``lr`` multiplied by
``lr_gamma`` at each of ``lr_milestones`` (0.2 at 150, 230, 240 of 250 epochs in the
paper); training stops early once an epoch's mean training loss (running, as Keras
reports it) is below ``stop_loss`` (1e-4).

Inputs are standardized per channel with the training set's statistics
(:class:`intraclass.augment.Normalizer`); every checkpoint stores them under
``normalization``, so extraction and sharpness can feed the model exactly what it saw.

Resume: every ``resume_every`` epochs and at the end, ``resume.pt`` (next to the model)
receives the model, optimizer, scheduler, RNG states (torch CPU and CUDA, the shuffling
generator), the history and the evolution snapshots, atomically. A rerun continues from
it and ends bitwise equal to an uninterrupted run on the CPU. A resume file that cannot
be read, or that belongs to another configuration, is reported and ignored.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import logging
import math
import os
import platform
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

from intraclass.augment import Normalizer, channel_stats, random_shift_flip, shift_flip
from intraclass.models import build_model, place, save_checkpoint
from intraclass.runtime import pick_device, require_keys, write_atomic

ADAM_LR_DIVISOR = 100  # appendix A.2: Adam runs at lr / 100
SGD_MOMENTUM = 0.9  # appendix A.2
HISTORY_COLUMNS = ("epoch", "lr", "train_loss", "train_acc", "seconds")
MODEL_KEYS = ("lr", "weight_decay", "batch_size", "optimizer", "dropout", "augment",
              "width", "depth", "seed")
TRAINING_KEYS = ("epochs", "lr_milestones", "lr_gamma", "stop_loss")
RESUME_NEUTRAL_KEYS = ("device", "eval_batch_size", "resume_every")


@dataclasses.dataclass
class TrainData:
    """Arrays of one training job: uint8 (N, H, W, C) images, int64 labels trained on."""

    x_train: np.ndarray
    y_train: np.ndarray
    x_test: np.ndarray
    y_test: np.ndarray
    num_classes: int

    def __post_init__(self):
        for name in ("x_train", "x_test"):
            array = getattr(self, name)
            if array.dtype != np.uint8 or array.ndim != 4:
                raise ValueError(f"{name} must be uint8 (N, H, W, C), got {array.dtype} "
                                 f"of shape {array.shape}")
        for x, y, split in ((self.x_train, self.y_train, "train"), (self.x_test, self.y_test, "test")):
            if len(x) != len(y):
                raise ValueError(f"{split}: {len(x)} images but {len(y)} labels")
            if len(y) and (y.min() < 0 or y.max() >= self.num_classes):
                raise ValueError(f"{split} labels outside [0, {self.num_classes})")
        if len(self.x_train) == 0:
            raise ValueError("the training set is empty")


@dataclasses.dataclass
class TrainOutputs:
    """Where a training job writes (``resume`` defaults to ``resume.pt`` beside ``model``)."""

    model: Path
    metrics: Path
    history: Path
    ckpt: Path
    resume: Path | None = None

    def __post_init__(self):
        for field in dataclasses.fields(self):
            value = getattr(self, field.name)
            setattr(self, field.name, None if value is None else Path(value))
        if self.resume is None:
            self.resume = self.model.parent / "resume.pt"


def _write_atomic(path: Path, text: str) -> None:
    write_atomic(path, lambda tmp: tmp.write_text(text))


def _save_atomic(obj: Any, path: Path) -> None:
    write_atomic(path, lambda tmp: torch.save(obj, tmp))


def make_optimizer(model: nn.Module, hparams: dict) -> torch.optim.Optimizer:
    """SGD (momentum 0.9) at lr, or Adam at lr / 100 (appendix A.2), with weight decay."""
    lr, wd = float(hparams["lr"]), float(hparams["weight_decay"])
    if hparams["optimizer"] == "sgd":
        return torch.optim.SGD(model.parameters(), lr=lr, momentum=SGD_MOMENTUM, weight_decay=wd)
    if hparams["optimizer"] == "adam":
        return torch.optim.Adam(model.parameters(), lr=lr / ADAM_LR_DIVISOR, weight_decay=wd)
    raise ValueError(f"params.model.optimizer must be sgd or adam, got {hparams['optimizer']!r}")


def _fingerprint(*parts: Any) -> str:
    """Identity of a job's configuration, stored in resume.pt so no run is mixed with another."""
    return hashlib.sha256(json.dumps(parts, sort_keys=True, default=str).encode()).hexdigest()


def _rng_states(generator: torch.Generator, device: torch.device) -> dict:
    states = {"torch": torch.get_rng_state(), "shuffle": generator.get_state()}
    if device.type == "cuda":
        states["cuda"] = torch.cuda.get_rng_state(device)
    return states


def _set_rng_states(states: dict, generator: torch.Generator, device: torch.device) -> None:
    torch.set_rng_state(states["torch"])
    generator.set_state(states["shuffle"])
    if device.type == "cuda" and "cuda" in states:
        torch.cuda.set_rng_state(states["cuda"], device)


def _load_resume(path: Path, fingerprint: str, log: logging.Logger) -> dict | None:
    """The resume state at ``path`` if it is readable and of this configuration, else None."""
    if not path.exists():
        return None
    try:
        state = torch.load(path, map_location="cpu", weights_only=True)
        if not isinstance(state, dict) or state.get("fingerprint") != fingerprint:
            log.warning("resume state %s belongs to another configuration: starting over", path)
            return None
        for key in ("model", "optimizer", "scheduler", "rng", "epoch", "history", "snapshots"):
            if key not in state:
                raise KeyError(f"no {key!r}")
    except Exception as error:
        log.warning("resume state %s is unreadable (%s): starting over", path, error)
        return None
    return state


def train_epoch(model: nn.Module, optimizer: torch.optim.Optimizer, images: torch.Tensor,
                labels: torch.Tensor, normalize: Normalizer, generator: torch.Generator,
                batch_size: int, augment: bool, autocast: bool) -> tuple[float, float]:
    """One epoch over device-resident uint8 (N, H, W, C) ``images``; (mean loss, accuracy).

    The permutation and every sample's augmentation are drawn up front from the CPU
    ``generator`` (so its state at the epoch's start fixes the epoch) and moved to the
    device in one copy each; the loss and accuracy accumulate on the device, and the
    only host synchronisation is at the end. The last batch may be smaller.
    """
    model.train()
    count, device = len(images), images.device
    order = torch.randperm(count, generator=generator).to(device)
    params = random_shift_flip(count, generator).to(device) if augment else None
    loss_sum = torch.zeros((), dtype=torch.float64, device=device)
    correct = torch.zeros((), dtype=torch.int64, device=device)
    for start in range(0, count, batch_size):
        index = order[start:start + batch_size]
        batch = images[index]  # uint8 (B, H, W, C)
        if augment:
            batch = shift_flip(batch, params[start:start + batch_size])
        targets = labels[index]
        with torch.autocast(device.type, dtype=torch.bfloat16, enabled=autocast):
            logits = model(normalize(batch))
        loss = nn.functional.cross_entropy(logits.float(), targets)
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()
        loss_sum += loss.detach() * len(index)
        correct += (logits.detach().argmax(1) == targets).sum()
    return loss_sum.item() / count, correct.item() / count


@torch.no_grad()
def evaluate(model: nn.Module, images: torch.Tensor, labels: torch.Tensor,
             normalize: Normalizer, batch_size: int, autocast: bool) -> tuple[float, float]:
    """Accuracy and mean cross-entropy of ``model`` in eval mode over uint8 (N, H, W, C)."""
    model.eval()
    loss_sum = torch.zeros((), dtype=torch.float64, device=images.device)
    correct = torch.zeros((), dtype=torch.int64, device=images.device)
    for start in range(0, len(images), batch_size):
        x = normalize(images[start:start + batch_size])
        y = labels[start:start + batch_size]
        with torch.autocast(images.device.type, dtype=torch.bfloat16, enabled=autocast):
            logits = model(x)
        loss_sum += nn.functional.cross_entropy(logits.float(), y, reduction="sum")
        correct += (logits.argmax(1) == y).sum()
    count = max(len(images), 1)
    return correct.item() / count, loss_sum.item() / count


def train(data: TrainData, model_params: dict, arch: dict, labels: str, training: dict,
          outputs: TrainOutputs, checkpoint_epochs: Sequence[int] = (),
          log: logging.Logger | None = None,
          on_epoch_end: Callable[[int], None] | None = None) -> dict:
    """Train one model and write ``outputs``; return the metrics dict (also in metrics.json).

    ``model_params`` is ``params.model``, ``arch`` is ``params.arch``, ``training`` is
    ``params.training`` (docs/stages.md, rule ``train``). ``on_epoch_end(epoch)`` runs
    after each epoch's resume point (tests use it to simulate a kill).
    """
    log = log or logging.getLogger("intraclass.train")
    require_keys(model_params, MODEL_KEYS, "model")
    require_keys(training, TRAINING_KEYS, "training")
    require_keys(arch, ("name",), "arch")
    epochs = int(training["epochs"])
    batch_size = int(model_params["batch_size"])
    resume_every = max(1, int(training.get("resume_every") or 1))
    eval_batch_size = int(training.get("eval_batch_size") or 1000)
    checkpoint_epochs = sorted({int(e) for e in checkpoint_epochs})
    if epochs < 1 or batch_size < 1:
        raise ValueError(f"need epochs >= 1 and batch_size >= 1, got {epochs} and {batch_size}")
    if any(e < 0 for e in checkpoint_epochs):
        raise ValueError(f"checkpoint_epochs must be >= 0, got {checkpoint_epochs}")

    device = pick_device(str(training.get("device", "auto")))
    on_cuda = device.type == "cuda"
    if on_cuda:
        torch.backends.cudnn.benchmark = True
    seed = int(model_params["seed"])
    arch_spec = dict(arch=arch["name"], num_classes=int(data.num_classes),
                     in_channels=int(data.x_train.shape[-1]), width=float(model_params["width"]),
                     depth=float(model_params["depth"]), base_width=int(arch.get("base_width", 32)),
                     dropout=float(model_params["dropout"]))
    hparams = dict(model_params)
    # what determines the result (not device, eval batch or resume cadence)
    result_keys = {k: v for k, v in training.items() if k not in RESUME_NEUTRAL_KEYS}
    fingerprint = _fingerprint(arch_spec, hparams, labels, result_keys, checkpoint_epochs,
                               data.x_train.shape, data.x_test.shape,
                               hashlib.sha256(data.y_train.tobytes()).hexdigest())

    torch.manual_seed(seed)  # weight init and dropout masks
    generator = torch.Generator().manual_seed(seed)  # shuffling and augmentation (CPU)
    model = place(build_model(**arch_spec), device)
    optimizer = make_optimizer(model, hparams)
    scheduler = torch.optim.lr_scheduler.MultiStepLR(
        optimizer, milestones=[int(m) for m in training["lr_milestones"]],
        gamma=float(training["lr_gamma"]))

    # data resident on the device as uint8; normalization statistics of the training set
    x_train = torch.from_numpy(np.ascontiguousarray(data.x_train)).to(device)
    y_train = torch.from_numpy(np.asarray(data.y_train, dtype=np.int64)).to(device)
    normalize = Normalizer(*channel_stats(data.x_train), device=device, contiguous=not on_cuda)
    n_train = len(x_train)
    augment = bool(model_params["augment"])

    history: list[dict] = []
    snapshots: dict[str, dict] = {}  # evolution checkpoints, kept in resume.pt too
    start_epoch = 0
    resumed_from = None
    state = _load_resume(outputs.resume, fingerprint, log)
    if state is not None:
        model.load_state_dict(state["model"])
        optimizer.load_state_dict(state["optimizer"])
        scheduler.load_state_dict(state["scheduler"])
        _set_rng_states(state["rng"], generator, device)
        history, snapshots = state["history"], state["snapshots"]
        start_epoch = resumed_from = int(state["epoch"])
        log.info("resuming from %s after epoch %d", outputs.resume, start_epoch)

    def snapshot(epoch: int) -> None:
        if epoch in checkpoint_epochs:
            snapshots[str(epoch)] = {k: v.detach().cpu().clone() for k, v in model.state_dict().items()}
            save_checkpoint(outputs.ckpt / f"epoch{epoch}.pt", model, arch_spec, hparams,
                            labels, epoch, normalization=normalize.to_dict())

    def save_resume(epoch: int) -> None:
        _save_atomic({"fingerprint": fingerprint, "epoch": epoch, "history": history,
                      "snapshots": snapshots, "model": model.state_dict(),
                      "optimizer": optimizer.state_dict(), "scheduler": scheduler.state_dict(),
                      "rng": _rng_states(generator, device)}, outputs.resume)

    if start_epoch == 0:
        snapshot(0)
    early_stopped = bool(history) and history[-1]["train_loss"] < float(training["stop_loss"])
    log.info("training %s on %s: %d samples, %s, %d epochs max", model_params.get("id", "model"),
             device, n_train, arch_spec, epochs)
    epoch = start_epoch
    while epoch < epochs and not early_stopped:
        epoch += 1
        began = time.perf_counter()
        lr = optimizer.param_groups[0]["lr"]
        train_loss, train_acc = train_epoch(model, optimizer, x_train, y_train, normalize,
                                            generator, batch_size, augment, autocast=on_cuda)
        scheduler.step()
        if not math.isfinite(train_loss):
            raise FloatingPointError(f"training loss is {train_loss} at epoch {epoch} "
                                     f"(lr {lr}): the model diverged")
        seconds = time.perf_counter() - began
        history.append({"epoch": epoch, "lr": lr, "train_loss": train_loss,
                        "train_acc": train_acc, "seconds": seconds})
        early_stopped = train_loss < float(training["stop_loss"])
        snapshot(epoch)
        done = sum(h["seconds"] for h in history)
        eta = done / len(history) * (epochs - epoch) if not early_stopped else 0.0
        log.info("epoch %d/%d loss %.4g acc %.4f lr %.3g %.0f img/s elapsed %s ETA %s",
                 epoch, epochs, train_loss, history[-1]["train_acc"], lr, n_train / seconds,
                 _hms(done), _hms(eta))
        if epoch % resume_every == 0 and epoch < epochs and not early_stopped:
            save_resume(epoch)
        if on_epoch_end is not None:
            on_epoch_end(epoch)
    save_resume(epoch)

    # evolution checkpoints never reached (early stop): the final weights stand in;
    # ones reached but missing (a failed job's outputs are removed) come from the snapshots
    outputs.ckpt.mkdir(parents=True, exist_ok=True)
    filled = {}
    for e in checkpoint_epochs:
        target = outputs.ckpt / f"epoch{e}.pt"
        if e > epoch:
            save_checkpoint(target, model, arch_spec, hparams, labels, epoch, requested_epoch=e,
                            normalization=normalize.to_dict())
            filled[str(e)] = epoch
        elif not target.exists():
            weights = build_model(**arch_spec)
            weights.load_state_dict(snapshots[str(e)])
            save_checkpoint(target, weights, arch_spec, hparams, labels, e,
                            normalization=normalize.to_dict())
    if filled:
        log.warning("training ended at epoch %d: checkpoints %s hold the final weights",
                    epoch, sorted(int(e) for e in filled))

    eval_began = time.perf_counter()
    x_test = torch.from_numpy(np.ascontiguousarray(data.x_test)).to(device)
    y_test = torch.from_numpy(np.asarray(data.y_test, dtype=np.int64)).to(device)
    # Final accuracies are measurements (test_acc is what every measure is ranked against):
    # float32, not bf16, so that they do not depend on the device. bf16 is for training.
    train_acc, train_loss = evaluate(model, x_train, y_train, normalize, eval_batch_size, autocast=False)
    test_acc, test_loss = evaluate(model, x_test, y_test, normalize, eval_batch_size, autocast=False)
    eval_seconds = time.perf_counter() - eval_began
    metrics = {
        "id": model_params.get("id"),
        "train_acc": train_acc, "train_loss": train_loss,
        "test_acc": test_acc, "test_loss": test_loss,
        "epochs_run": epoch, "early_stopped": early_stopped,
        "final_running_train_loss": history[-1]["train_loss"] if history else None,
        "checkpoints_from_final_weights": filled,
        "resumed_from_epoch": resumed_from,
        "wall_time_s": sum(h["seconds"] for h in history) + eval_seconds,
        "n_train": n_train, "n_test": len(x_test), "num_classes": int(data.num_classes),
        "labels": labels, "arch_spec": arch_spec, "hparams": hparams, "training": training,
        "device": str(device) if not on_cuda else f"{device} ({torch.cuda.get_device_name(device)})",
        "torch_version": torch.__version__, "python_version": platform.python_version(),
    }
    save_checkpoint(outputs.model, model, arch_spec, hparams, labels, epoch,
                    normalization=normalize.to_dict())
    _write_atomic(outputs.history, _history_csv(history))
    _write_atomic(outputs.metrics, json.dumps(metrics, indent=2, default=str) + "\n")
    outputs.resume.unlink(missing_ok=True)
    log.info("done: train acc %.4f loss %.4g, test acc %.4f loss %.4g, %d epochs%s",
             train_acc, train_loss, test_acc, test_loss, epoch,
             " (early stop)" if early_stopped else "")
    return metrics


def _history_csv(history: list[dict]) -> str:
    lines = [",".join(HISTORY_COLUMNS)]
    lines += [",".join(repr(row[c]) if isinstance(row[c], float) else str(row[c])
                       for c in HISTORY_COLUMNS) for row in history]
    return "\n".join(lines) + "\n"


def _hms(seconds: float) -> str:
    seconds = round(seconds)
    return f"{seconds // 3600}:{seconds // 60 % 60:02d}:{seconds % 60:02d}"


def run_training(data_path: str | os.PathLike, outputs: TrainOutputs, model_params: dict,
                 arch: dict, labels: str, training: dict,
                 checkpoint_epochs: Sequence[int] = (),
                 log: logging.Logger | None = None) -> dict:
    """Rule ``train``: load the dataset, select the training subset, :func:`train`.

    The training set is ``intraclass.data.training_indices(dataset, train_per_class,
    data_seed)``; the labels trained on are ``labels`` (fine or coarse).
    """
    from intraclass.data import load_dataset, training_indices

    if labels not in ("fine", "coarse"):
        raise ValueError(f"params.labels must be fine or coarse, got {labels!r}")
    dataset = load_dataset(data_path)
    require_keys(training, ("train_per_class", "data_seed"), "training")
    index = training_indices(dataset, training["train_per_class"], training["data_seed"])
    y_train = np.asarray(dataset.labels("train", labels), dtype=np.int64)[index]
    y_test = np.asarray(dataset.labels("test", labels), dtype=np.int64)
    names = dataset.coarse_names if labels == "coarse" else dataset.fine_names
    num_classes = len(names) if names else int(max(y_train.max(), y_test.max())) + 1
    data = TrainData(dataset.x_train[index], y_train, dataset.x_test, y_test, num_classes)
    return train(data, model_params, arch, labels, training, outputs, checkpoint_epochs, log)
