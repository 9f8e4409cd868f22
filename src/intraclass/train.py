"""Training of one model of the grid (paper appendix A.1-A.3), resumable and reproducible.

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

Outputs (:class:`TrainOutputs`): ``model.pt`` (final weights), ``init.pt`` (the weights at
initialization, epoch 0, before any step; same checkpoint format), ``ckpt/epoch{E}.pt``
(evolution checkpoints), ``history.csv``, ``test_correct.npy`` (1-D bool, one entry per
test image in the dataset's order: whether the final model's argmax equals the label, from
the float32 evaluation pass that gives ``test_acc``, so its mean is ``test_acc`` exactly)
and ``metrics.json`` (written last; always valid JSON: non-finite numbers are ``null``).

Divergence (:mod:`intraclass.status`): an epoch whose running loss is non-finite, or
after which a weight or buffer is non-finite, ends training at that epoch; a final
evaluation with a non-finite loss marks the model too. The job still succeeds: it writes
every output (the diverged weights, checkpoints not reached filled with them, an
all-False ``test_correct``) and ``metrics.json`` with ``status: diverged`` and a
``reason``; later stages skip the model. Otherwise ``status`` is ``ok``.

Reproducibility, exactly what holds:

* CPU: a rerun on the same machine with the same torch intra-op thread count and the
  same library versions is bitwise identical. The thread count changes the reduction
  order of convolutions (1 vs 2 threads give different weights), so it is part of what
  defines a result: ``training["threads"]`` (the workflow passes ``resources.train.threads``,
  a param of the train rule, so changing it reruns training) is applied with
  ``torch.set_num_threads`` and recorded in ``metrics.json`` as ``threads``. Results are
  not bitwise across CPU models or instruction sets (oneDNN picks kernels per CPU).
* CUDA: by default ``cudnn.benchmark`` picks the fastest convolution algorithms per run,
  so reruns agree only statistically. With ``training["deterministic"]`` true, cuDNN
  autotuning is off, ``torch.use_deterministic_algorithms(True)`` is on (an operation
  without a deterministic implementation raises instead of running) and
  ``CUBLAS_WORKSPACE_CONFIG=:4096:8``: reruns on the same GPU model, driver and library
  versions are bitwise identical. Never bitwise between GPU models, nor GPU vs CPU.
* The final accuracies and ``test_correct`` are float32 evaluations on every device
  (bf16 is for training only), so they do not carry bf16 rounding.
* Resume: every ``resume_every`` epochs and at the end, ``resume.pt`` (next to the model)
  receives the model, optimizer, scheduler, RNG states (torch CPU and CUDA, the shuffling
  generator), the history and the evolution snapshots, atomically. A rerun continues
  from it and ends bitwise equal to an uninterrupted run on the CPU (the same thread
  count is part of the resume state's configuration). A resume file that cannot be read,
  or that belongs to another configuration, is reported and ignored.

``metrics.json`` records the device used, the thread count, ``deterministic`` and the
torch, numpy and Python versions (and CUDA/cuDNN versions on a GPU).
"""

from __future__ import annotations

import contextlib
import dataclasses
import hashlib
import json
import logging
import math
import os
import platform
import time
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

from intraclass import archspec
from intraclass.augment import Normalizer, channel_stats, random_shift_flip, shift_flip
from intraclass.config import RUN_ONLY
from intraclass.models import build_model, load_error_message, measured_sites, place, save_checkpoint
from intraclass.names import HYPERPARAMETERS, LABEL_LEVELS
from intraclass.runtime import pick_device, require_keys, write_atomic
from intraclass.status import DIVERGED, OK, write_json

ADAM_LR_DIVISOR = 100  # appendix A.2: Adam runs at lr / 100
SGD_MOMENTUM = 0.9  # appendix A.2
HISTORY_COLUMNS = ("epoch", "lr", "train_loss", "train_acc", "seconds")
MODEL_KEYS = HYPERPARAMETERS  # params.model
TRAINING_KEYS = ("epochs", "lr_milestones", "lr_gamma", "stop_loss")
RESUME_NEUTRAL_KEYS = RUN_ONLY["training"]  # how a job runs, not what it computes
CUBLAS_WORKSPACE = ":4096:8"  # cuBLAS's documented setting for reproducible results


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
    """Where a training job writes; ``resume``, ``init`` and ``test_correct`` default to
    ``resume.pt``, ``init.pt`` and ``test_correct.npy`` beside ``model``."""

    model: Path
    metrics: Path
    history: Path
    ckpt: Path
    resume: Path | None = None
    init: Path | None = None
    test_correct: Path | None = None

    def __post_init__(self):
        for field in dataclasses.fields(self):
            value = getattr(self, field.name)
            setattr(self, field.name, None if value is None else Path(value))
        defaults = {"resume": "resume.pt", "init": "init.pt", "test_correct": "test_correct.npy"}
        for name, filename in defaults.items():
            if getattr(self, name) is None:
                setattr(self, name, self.model.parent / filename)

    @classmethod
    def from_rule(cls, output) -> TrainOutputs:
        """The outputs a rule declares (``snakemake.output``: train's, or import_model's,
        which has no ``init``); the ones it does not declare take their defaults."""
        names = [field.name for field in dataclasses.fields(cls)]
        return cls(**{name: getattr(output, name) for name in names if hasattr(output, name)})


@dataclasses.dataclass(frozen=True)
class TrainSettings:
    """The checked settings of one job, from ``params.model`` and ``params.training``.

    ``threads`` is None when the caller leaves torch's thread count as it is (tests);
    the workflow always sets it (a result-defining setting on the CPU, module doc).
    """

    epochs: int
    batch_size: int
    seed: int
    augment: bool
    lr_milestones: tuple[int, ...]
    lr_gamma: float
    stop_loss: float
    device: str
    eval_batch_size: int
    resume_every: int
    threads: int | None
    deterministic: bool
    checkpoint_epochs: tuple[int, ...]

    @classmethod
    def from_params(cls, model_params: dict, arch: dict, training: dict,
                    checkpoint_epochs: Sequence[int]) -> TrainSettings:
        require_keys(model_params, MODEL_KEYS, "model")
        require_keys(training, TRAINING_KEYS, "training")
        require_keys(arch, ("name",), "arch")
        settings = cls(
            epochs=int(training["epochs"]), batch_size=int(model_params["batch_size"]),
            seed=int(model_params["seed"]), augment=bool(model_params["augment"]),
            lr_milestones=tuple(int(m) for m in training["lr_milestones"]),
            lr_gamma=float(training["lr_gamma"]), stop_loss=float(training["stop_loss"]),
            device=str(training.get("device", "auto")),
            eval_batch_size=int(training.get("eval_batch_size") or 1000),
            resume_every=max(1, int(training.get("resume_every") or 1)),
            threads=None if training.get("threads") is None else int(training["threads"]),
            deterministic=bool(training.get("deterministic", False)),
            checkpoint_epochs=tuple(sorted({int(e) for e in checkpoint_epochs})))
        if settings.epochs < 1 or settings.batch_size < 1:
            raise ValueError(f"need epochs >= 1 and batch_size >= 1, got {settings.epochs} "
                             f"and {settings.batch_size}")
        if any(e < 0 for e in settings.checkpoint_epochs):
            raise ValueError(f"checkpoint_epochs must be >= 0, got {list(settings.checkpoint_epochs)}")
        if settings.threads is not None and settings.threads < 1:
            raise ValueError(f"params.training threads must be >= 1, got {settings.threads}")
        return settings


@dataclasses.dataclass
class _Job:
    """Everything one training job holds between its steps."""

    settings: TrainSettings
    device: torch.device
    model: nn.Module
    optimizer: torch.optim.Optimizer
    scheduler: Any
    generator: torch.Generator  # shuffling and augmentation (CPU)
    normalize: Normalizer
    x_train: torch.Tensor  # uint8 (N, H, W, C) on the device
    y_train: torch.Tensor  # int64 (N,) on the device
    arch_spec: dict
    hparams: dict
    labels: str
    fingerprint: str
    outputs: TrainOutputs
    history: list[dict] = dataclasses.field(default_factory=list)
    snapshots: dict[str, dict] = dataclasses.field(default_factory=dict)  # evolution weights
    epoch: int = 0  # epochs done
    resumed_from: int | None = None
    reason: str | None = None  # why the model diverged (None: it did not)

    def save_checkpoint(self, path: Path, model: nn.Module | None = None, epoch: int | None = None,
                        **extra: Any) -> None:
        save_checkpoint(path, self.model if model is None else model, self.arch_spec, self.hparams,
                        self.labels, self.epoch if epoch is None else epoch,
                        normalization=self.normalize.to_dict(), **extra)

    @property
    def early_stopped(self) -> bool:
        return (self.reason is None and bool(self.history)
                and self.history[-1]["train_loss"] < self.settings.stop_loss)


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
        log.warning("resume state %s is unreadable (%s): starting over", path, load_error_message(error))
        return None
    return state


# ---------------------------------------------------------------- one epoch, evaluation

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
def evaluate_examples(model: nn.Module, images: torch.Tensor, labels: torch.Tensor,
                      normalize: Normalizer, batch_size: int,
                      autocast: bool) -> tuple[np.ndarray, float]:
    """Per-example correctness (bool (N,): argmax equals the label) and the mean
    cross-entropy of ``model`` in eval mode over uint8 (N, H, W, C) ``images``."""
    model.eval()
    loss_sum = torch.zeros((), dtype=torch.float64, device=images.device)
    hits = []
    for start in range(0, len(images), batch_size):
        x = normalize(images[start:start + batch_size])
        y = labels[start:start + batch_size]
        with torch.autocast(images.device.type, dtype=torch.bfloat16, enabled=autocast):
            logits = model(x)
        loss_sum += nn.functional.cross_entropy(logits.float(), y, reduction="sum")
        hits.append(logits.argmax(1) == y)
    correct = torch.cat(hits).cpu().numpy() if hits else np.zeros(0, dtype=bool)
    return correct, loss_sum.item() / max(len(images), 1)


# ---------------------------------------------------------------- process settings

@contextlib.contextmanager
def torch_threads(threads: int | None) -> Iterator[int]:
    """Run with ``threads`` torch intra-op threads (None: as they are); restore on exit.
    Yields the thread count in effect (recorded in ``metrics.json``)."""
    before = torch.get_num_threads()
    if threads is not None:
        torch.set_num_threads(threads)
    try:
        yield torch.get_num_threads()
    finally:
        if threads is not None:
            torch.set_num_threads(before)


@contextlib.contextmanager
def cuda_determinism(device: torch.device, deterministic: bool) -> Iterator[None]:
    """CUDA only: cuDNN autotuning for speed, or (``deterministic``) reproducible
    algorithms (module doc); the previous global settings are restored on exit. The
    CPU is left alone: its kernels are deterministic for a fixed thread count."""
    if device.type != "cuda":
        yield
        return
    before = (torch.backends.cudnn.benchmark, torch.backends.cudnn.deterministic,
              torch.are_deterministic_algorithms_enabled())
    if deterministic:
        # read when cuBLAS creates its handle; set before the first matrix product
        os.environ.setdefault("CUBLAS_WORKSPACE_CONFIG", CUBLAS_WORKSPACE)
    torch.backends.cudnn.benchmark = not deterministic
    torch.backends.cudnn.deterministic = deterministic
    torch.use_deterministic_algorithms(deterministic)
    try:
        yield
    finally:
        torch.backends.cudnn.benchmark, torch.backends.cudnn.deterministic = before[:2]
        torch.use_deterministic_algorithms(before[2])


def environment(device: torch.device, threads: int, deterministic: bool) -> dict:
    """What a result was computed with: device, thread count, library versions."""
    env = {
        "device": str(device) if device.type != "cuda"
        else f"{device} ({torch.cuda.get_device_name(device)})",
        "threads": int(threads), "deterministic": bool(deterministic),
        "torch_version": torch.__version__, "numpy_version": np.__version__,
        "python_version": platform.python_version(),
    }
    if device.type == "cuda":
        env["cuda_version"] = torch.version.cuda
        env["cudnn_version"] = torch.backends.cudnn.version()
    return env


# ---------------------------------------------------------------- the job's steps

def _setup(data: TrainData, model_params: dict, arch: dict, labels: str, training: dict,
           settings: TrainSettings, device: torch.device, outputs: TrainOutputs,
           check_sizes: Callable[[list[int], str], None] | None = None) -> _Job:
    """Seeded model (its initial weights written to ``init.pt``), optimizer, scheduler,
    data on the device, normalization statistics of the training set. ``check_sizes``
    (:func:`intraclass.config.sizes_check`) gets the built model's layer widths first."""
    # the paper's CNNs get the same spec dict as before norms and the ViT existed; a
    # builder gets the model's hyperparameters (the grid's, its id left out) to scale itself
    arch_spec = archspec.model_spec(arch["name"], {k: v for k, v in arch.items() if k != "name"},
                                    {k: v for k, v in model_params.items() if k != "id"},
                                    num_classes=int(data.num_classes),
                                    in_channels=int(data.x_train.shape[-1]))
    hparams = dict(model_params)
    # what determines the result (not device, eval batch or resume cadence)
    result_keys = {k: v for k, v in training.items() if k not in RESUME_NEUTRAL_KEYS}
    fingerprint = _fingerprint(arch_spec, hparams, labels, result_keys,
                               list(settings.checkpoint_epochs), data.x_train.shape,
                               data.x_test.shape, hashlib.sha256(data.y_train.tobytes()).hexdigest())
    torch.manual_seed(settings.seed)  # weight init and dropout masks
    generator = torch.Generator().manual_seed(settings.seed)
    model = build_model(**arch_spec)
    if check_sizes is not None:  # a builder's widths are known only now (docs/training.md)
        check_sizes([site.width for site in measured_sites(model)], str(model_params.get("id")))
    model = place(model, device)
    optimizer = make_optimizer(model, hparams)
    scheduler = torch.optim.lr_scheduler.MultiStepLR(
        optimizer, milestones=list(settings.lr_milestones), gamma=settings.lr_gamma)
    x_train = torch.from_numpy(np.ascontiguousarray(data.x_train)).to(device)
    y_train = torch.from_numpy(np.asarray(data.y_train, dtype=np.int64)).to(device)
    normalize = Normalizer(*channel_stats(data.x_train), device=device,
                           contiguous=device.type != "cuda")
    job = _Job(settings, device, model, optimizer, scheduler, generator, normalize, x_train,
               y_train, arch_spec, hparams, labels, fingerprint, outputs)
    # the initial weights are a function of the seed alone: rewritten on a resume too
    job.save_checkpoint(outputs.init, epoch=0)
    return job


def _resume(job: _Job, log: logging.Logger) -> None:
    """Continue from ``resume.pt`` when it holds this configuration; else start fresh."""
    state = _load_resume(job.outputs.resume, job.fingerprint, log)
    if state is None:
        _snapshot(job)  # epoch 0, when requested
        return
    job.model.load_state_dict(state["model"])
    job.optimizer.load_state_dict(state["optimizer"])
    job.scheduler.load_state_dict(state["scheduler"])
    _set_rng_states(state["rng"], job.generator, job.device)
    job.history, job.snapshots = state["history"], state["snapshots"]
    job.epoch = job.resumed_from = int(state["epoch"])
    job.reason = state.get("reason")
    log.info("resuming from %s after epoch %d", job.outputs.resume, job.epoch)


def _snapshot(job: _Job) -> None:
    """Keep (in memory and resume.pt) and write the weights of a requested epoch."""
    if job.epoch in job.settings.checkpoint_epochs:
        job.snapshots[str(job.epoch)] = {k: v.detach().cpu().clone()
                                         for k, v in job.model.state_dict().items()}
        job.save_checkpoint(job.outputs.ckpt / f"epoch{job.epoch}.pt")


def _save_resume(job: _Job) -> None:
    state = {"fingerprint": job.fingerprint, "epoch": job.epoch, "history": job.history,
             "snapshots": job.snapshots, "model": job.model.state_dict(),
             "optimizer": job.optimizer.state_dict(), "scheduler": job.scheduler.state_dict(),
             "rng": _rng_states(job.generator, job.device), "reason": job.reason}
    write_atomic(job.outputs.resume, lambda tmp: torch.save(state, tmp))


@torch.no_grad()
def nonfinite_tensors(model: nn.Module) -> list[str]:
    """Names of the floating weights and buffers holding a NaN or an infinity."""
    tensors = [(k, v) for k, v in model.state_dict().items() if v.is_floating_point()]
    finite = torch.stack([torch.isfinite(v).all() for _, v in tensors]).tolist()
    return [k for (k, _), ok in zip(tensors, finite) if not ok]


def _divergence(job: _Job, train_loss: float, lr: float) -> str | None:
    """Why the epoch just run diverged (a non-finite loss or weights), or None."""
    if not math.isfinite(train_loss):
        return f"training loss {train_loss} at epoch {job.epoch} (lr {lr:g})"
    bad = nonfinite_tensors(job.model)
    if bad:
        return (f"non-finite weights after epoch {job.epoch} (lr {lr:g}, loss {train_loss:.4g}): "
                f"{', '.join(bad[:3])}{' ...' if len(bad) > 3 else ''}")
    return None


def _epochs(job: _Job, log: logging.Logger, on_epoch_end: Callable[[int], None] | None) -> None:
    """Epochs until the last one, an early stop or a divergence."""
    settings = job.settings
    while job.epoch < settings.epochs and not job.early_stopped and job.reason is None:
        job.epoch += 1
        began = time.perf_counter()
        lr = job.optimizer.param_groups[0]["lr"]
        train_loss, train_acc = train_epoch(job.model, job.optimizer, job.x_train, job.y_train,
                                            job.normalize, job.generator, settings.batch_size,
                                            settings.augment, autocast=job.device.type == "cuda")
        job.scheduler.step()
        job.reason = _divergence(job, train_loss, lr)
        seconds = time.perf_counter() - began
        job.history.append({"epoch": job.epoch, "lr": lr, "train_loss": train_loss,
                            "train_acc": train_acc, "seconds": seconds})
        _snapshot(job)
        _log_epoch(job, log, seconds)
        if job.reason is not None:
            log.warning("the model diverged: %s; training stops here", job.reason)
        elif (job.epoch % settings.resume_every == 0 and job.epoch < settings.epochs
              and not job.early_stopped):
            _save_resume(job)
        if on_epoch_end is not None:
            on_epoch_end(job.epoch)
    _save_resume(job)


def _log_epoch(job: _Job, log: logging.Logger, seconds: float) -> None:
    done = sum(h["seconds"] for h in job.history)
    left = job.settings.epochs - job.epoch
    eta = done / len(job.history) * left if not job.early_stopped else 0.0
    row = job.history[-1]
    log.info("epoch %d/%d loss %.4g acc %.4f lr %.3g %.0f img/s elapsed %s ETA %s",
             job.epoch, job.settings.epochs, row["train_loss"], row["train_acc"], row["lr"],
             len(job.x_train) / seconds, _hms(done), _hms(eta))


def _backfill_checkpoints(job: _Job, log: logging.Logger) -> dict[str, int]:
    """Evolution checkpoints never reached (early stop, divergence) get the final weights;
    ones reached but missing (Snakemake removes a failed job's outputs) come from the
    snapshots. Returns {requested epoch: epoch of the weights} for the former."""
    job.outputs.ckpt.mkdir(parents=True, exist_ok=True)
    filled = {}
    for e in job.settings.checkpoint_epochs:
        target = job.outputs.ckpt / f"epoch{e}.pt"
        if e > job.epoch:
            job.save_checkpoint(target, requested_epoch=e)
            filled[str(e)] = job.epoch
        elif not target.exists():
            weights = build_model(**job.arch_spec)
            weights.load_state_dict(job.snapshots[str(e)])
            job.save_checkpoint(target, model=weights, epoch=e)
    if filled:
        log.warning("training ended at epoch %d: checkpoints %s hold the final weights",
                    job.epoch, sorted(int(e) for e in filled))
    return filled


def _final_evaluation(job: _Job, data: TrainData) -> tuple[dict, np.ndarray]:
    """Float32 accuracies and losses of the final weights, and the per-example test
    correctness (bool (n_test,)); all-False and null for a model that diverged in training."""
    if job.reason is not None:
        nothing = dict(train_acc=None, train_loss=None, test_acc=None, test_loss=None)
        return nothing, np.zeros(len(data.x_test), dtype=bool)
    x_test = torch.from_numpy(np.ascontiguousarray(data.x_test)).to(job.device)
    y_test = torch.from_numpy(np.asarray(data.y_test, dtype=np.int64)).to(job.device)
    # Final accuracies are measurements (test_acc is what every measure is ranked against):
    # float32, not bf16, so that they do not depend on the device. bf16 is for training.
    batch = job.settings.eval_batch_size
    train_correct, train_loss = evaluate_examples(job.model, job.x_train, job.y_train,
                                                  job.normalize, batch, autocast=False)
    test_correct, test_loss = evaluate_examples(job.model, x_test, y_test, job.normalize,
                                                batch, autocast=False)
    values = dict(train_acc=int(train_correct.sum()) / max(len(train_correct), 1),
                  train_loss=train_loss,
                  test_acc=int(test_correct.sum()) / max(len(test_correct), 1),
                  test_loss=test_loss)
    losses = {"train": train_loss, "test": test_loss}
    bad = [f"{split} loss {loss}" for split, loss in losses.items() if not math.isfinite(loss)]
    if bad:
        job.reason = f"final evaluation after epoch {job.epoch}: {', '.join(bad)}"
    return values, test_correct


def _write_outputs(job: _Job, metrics: dict, test_correct: np.ndarray) -> None:
    write_model_outputs(job.outputs, job.save_checkpoint, job.history, test_correct, metrics)


def write_model_outputs(outputs: TrainOutputs, save_model: Callable[[Path], object], history: list[dict],
                        test_correct: np.ndarray, metrics: dict) -> None:
    """A model's files for every later stage, by training and by a zoo's import alike:
    final weights (``save_model(path)``), per-example test correctness, history, then
    metrics.json (last: the job's 'done'); a resume state left beside them is removed."""
    save_model(outputs.model)

    def save_correct(tmp: Path) -> None:
        with open(tmp, "wb") as handle:  # a handle: np.save would append .npy to the name
            np.save(handle, np.asarray(test_correct, dtype=bool))

    write_atomic(outputs.test_correct, save_correct)
    write_atomic(outputs.history, lambda tmp: tmp.write_text(_history_csv(history)))
    write_json(outputs.metrics, metrics)
    outputs.resume.unlink(missing_ok=True)


def train(data: TrainData, model_params: dict, arch: dict, labels: str, training: dict,
          outputs: TrainOutputs, checkpoint_epochs: Sequence[int] = (),
          log: logging.Logger | None = None,
          on_epoch_end: Callable[[int], None] | None = None,
          check_sizes: Callable[[list[int], str], None] | None = None) -> dict:
    """Train one model and write ``outputs``; return the metrics dict (also in metrics.json).

    ``model_params`` is ``params.model``, ``arch`` is ``params.arch``, ``training`` is
    ``params.training`` (docs/stages.md, rule ``train``; optional ``threads`` and
    ``deterministic``, module doc). ``on_epoch_end(epoch)`` runs after each epoch's resume
    point (tests use it to simulate a kill). ``check_sizes(widths, model id)`` runs on the
    built model's measured layer widths before any step (the workflow's check of the
    study's k, :func:`intraclass.config.sizes_check`). A diverging model is not an error:
    its metrics say ``status: diverged`` (module doc).
    """
    log = log or logging.getLogger("intraclass.train")
    settings = TrainSettings.from_params(model_params, arch, training, checkpoint_epochs)
    device = pick_device(settings.device)
    with torch_threads(settings.threads) as threads, cuda_determinism(device, settings.deterministic):
        job = _setup(data, model_params, arch, labels, training, settings, device, outputs, check_sizes)
        _resume(job, log)
        log.info("training %s on %s (%d threads): %d samples, %s, %d epochs max",
                 model_params.get("id", "model"), device, threads, len(job.x_train),
                 job.arch_spec, settings.epochs)
        _epochs(job, log, on_epoch_end)
        filled = _backfill_checkpoints(job, log)
        eval_began = time.perf_counter()
        values, test_correct = _final_evaluation(job, data)
        eval_seconds = time.perf_counter() - eval_began
        metrics = {
            "id": model_params.get("id"),
            "status": OK if job.reason is None else DIVERGED, "reason": job.reason,
            **values,
            "epochs_run": job.epoch, "early_stopped": job.early_stopped,
            "final_running_train_loss": job.history[-1]["train_loss"] if job.history else None,
            "checkpoints_from_final_weights": filled,
            "resumed_from_epoch": job.resumed_from,
            "wall_time_s": sum(h["seconds"] for h in job.history) + eval_seconds,
            "n_train": len(job.x_train), "n_test": len(data.x_test),
            "num_classes": int(data.num_classes), "labels": labels,
            "arch_spec": job.arch_spec, "hparams": job.hparams, "training": training,
            **environment(device, threads, settings.deterministic),
        }
        _write_outputs(job, metrics, test_correct)
    if job.reason is None:
        log.info("done: train acc %.4f loss %.4g, test acc %.4f loss %.4g, %d epochs%s",
                 values["train_acc"], values["train_loss"], values["test_acc"],
                 values["test_loss"], job.epoch, " (early stop)" if job.early_stopped else "")
    else:
        log.warning("done: status diverged (%s); later stages skip this model", job.reason)
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
                 log: logging.Logger | None = None,
                 check_sizes: Callable[[list[int], str], None] | None = None) -> dict:
    """Rule ``train``: load the dataset, select the training subset, :func:`train`.

    The training set is ``intraclass.data.training_indices(dataset, train_per_class,
    data_seed)``; the labels trained on are ``labels`` (fine or coarse). ``test_correct``
    follows the dataset's test order (every test image, none left out).
    """
    data = load_train_data(data_path, labels, training)
    return train(data, model_params, arch, labels, training, outputs, checkpoint_epochs, log,
                 check_sizes=check_sizes)


def load_train_data(data_path: str | os.PathLike, labels: str, training: dict) -> TrainData:
    """The training subset (``training_indices(dataset, train_per_class, data_seed)``) and
    the whole test split of a dataset file, with the ``labels`` (fine or coarse) trained on;
    also the data a zoo's models are evaluated on (:mod:`intraclass.zoo_import`)."""
    from intraclass.data import load_dataset, training_indices

    if labels not in LABEL_LEVELS:
        raise ValueError(f"params.labels must be one of {LABEL_LEVELS}, got {labels!r}")
    dataset = load_dataset(data_path)
    require_keys(training, ("train_per_class", "data_seed"), "training")
    index = training_indices(dataset, training["train_per_class"], training["data_seed"])
    y_train = np.asarray(dataset.labels("train", labels), dtype=np.int64)[index]
    y_test = np.asarray(dataset.labels("test", labels), dtype=np.int64)
    names = dataset.coarse_names if labels == "coarse" else dataset.fine_names
    num_classes = len(names) if names else int(max(y_train.max(), y_test.max())) + 1
    return TrainData(dataset.x_train[index], y_train, dataset.x_test, y_test, num_classes)
