"""Importing a zoo's models (rules ``import_model`` and ``import_init``; docs/zoo.md).

``import_model`` replaces ``train`` for a zoo study and writes the same per-model outputs
(:class:`intraclass.train.TrainOutputs`), so that every later stage runs unchanged:

* ``model.pt``: the project's checkpoint format (:func:`intraclass.models.save_checkpoint`:
  ``state_dict``, ``arch_spec``, ``hparams``, ``labels``, ``epoch``, ``normalization``);
* ``metrics.json``: train and test accuracy and loss of the float32 evaluation pass of
  :func:`intraclass.train.evaluate_examples` (the one training uses), ``status`` ``ok``
  (``diverged`` when the weights or a loss are not finite), where the normalization came
  from, the zoo table's own accuracies when it has them, device and versions;
* ``test_correct.npy`` (per test image: argmax equals the label), ``history.csv`` (its
  header only: nothing was trained here) and an empty ``ckpt/``.

``import_init`` writes ``init.pt`` (the zoo's initial weights, for layer rotation) with
the imported model's spec and normalization.

Zoo checkpoint files are read with ``torch.load(weights_only=True)`` (never unpickling
code) and may hold a ``state_dict`` (name -> tensor; a ``module.`` prefix of
``DataParallel`` is removed) or a dict with ``state_dict`` and optionally
``normalization`` (``{"mean": [...], "std": [...]}`` per channel, pixels in [0, 1]),
``labels`` and ``epoch``: a model.pt of another intraclass study qualifies. A file that
does not load is an error naming it; weights that do not fit the architecture are an
error naming the file and the missing, unexpected and mis-shaped keys. The job fails:
a bad file is a fault of the zoo for its owner to fix (or to drop the row from the
table), never a model silently left out of the tables.

Normalization of the inputs, first found: the checkpoint's ``normalization``, the zoo
config's ``normalization``, the training set's per-channel mean and std
(:func:`intraclass.augment.channel_stats`, what this project's training uses);
``metrics.json`` says which (``normalization_source``).

Builders (``zoo.arch: package.module:function``, or a grid study's ``arch.name``):
imported at job time (the working directory is searched too); called as
``function(num_classes=..., in_channels=..., hparams={table row}, **zoo.arch_options)``
(a grid model: its hyperparameters and the other keys of ``arch``); must return an
``nn.Module`` that maps float (N, C, H, W) images to (N, num_classes) logits and declares
its measured sites (``measured_sites()``, :class:`intraclass.archspec.MeasuredSite`;
optionally ``kernel_parameters()``). :func:`example_cnn` is one. This module's
:func:`build_with_builder` is the one call of a builder, by every stage that builds a
model (:func:`intraclass.models.build_model`).
"""

from __future__ import annotations

import importlib
import logging
import math
import os
import sys
import time
from collections.abc import Callable, Mapping
from pathlib import Path

import numpy as np
import torch
from torch import nn

from intraclass.archspec import MeasuredSite, find_module, model_spec

log_default = logging.getLogger(__name__)


class CheckpointError(ValueError):
    """A zoo checkpoint that cannot be imported; the message names the file."""


# ----------------------------------------------------------------------- builders

def import_builder(spec: str) -> Callable[..., nn.Module]:
    """The function named by ``package.module:function``, from the Python path or else the
    working directory (:func:`intraclass.archspec.find_module`, which the config checks
    use too). Errors name the spec."""
    module_name, _, function = str(spec).partition(":")
    found, directory = find_module(module_name)
    if found is None:
        raise ImportError(f"builder {spec!r}: cannot import {module_name} from the Python path "
                          f"or the working directory {os.getcwd()}")
    if directory is not None and directory not in sys.path:
        sys.path.append(directory)  # a builder file beside the config, found by its name
    try:
        module = importlib.import_module(module_name)
    except ImportError as error:  # the module's own imports (a missing dependency)
        raise ImportError(f"builder {spec!r}: importing {module_name} failed: {error}") from error
    builder = getattr(module, function, None)
    if not callable(builder):
        raise ImportError(f"builder {spec!r}: module {module_name} has no function {function}")
    return builder


def build_with_builder(arch: str, num_classes: int, in_channels: int, hparams: Mapping | None = None,
                       options: Mapping | None = None) -> nn.Module:
    """The model of a user's builder (module doc); an error names the builder when it
    returns no module or one without measured sites."""
    from intraclass.models import measured_sites

    model = import_builder(arch)(num_classes=int(num_classes), in_channels=int(in_channels),
                                 hparams=dict(hparams or {}), **dict(options or {}))
    if not isinstance(model, nn.Module):
        raise TypeError(f"builder {arch!r} returned a {type(model).__name__}, not a torch.nn.Module")
    try:
        sites = measured_sites(model)
    except TypeError as error:
        raise TypeError(f"builder {arch!r}: {error} (docs/zoo.md, 'Builders')") from None
    if not sites:  # every measure and the k checks need at least one layer
        raise TypeError(f"builder {arch!r}: {type(model).__name__}.measured_sites() lists no layer "
                        "(docs/zoo.md, 'Builders')")
    return model


# -------------------------------------------------------------------- checkpoints

def read_zoo_checkpoint(path: str | os.PathLike) -> dict:
    """``{"state_dict", "normalization" (or None), "labels" (or None), "epoch"}`` of a
    zoo file, loaded with ``weights_only=True`` (module doc); :class:`CheckpointError`
    naming the file when it is corrupt or holds something else."""
    from intraclass.models import load_error_message

    path = Path(path)
    if not path.is_file():
        raise CheckpointError(f"zoo checkpoint {path} does not exist")
    try:
        loaded = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as error:  # zip, pickle and weights_only errors all mean "unreadable"
        raise CheckpointError(
            f"zoo checkpoint {path} is corrupt or not a checkpoint (loaded with weights_only=True): "
            f"{load_error_message(error)}. A zoo file holds a state_dict or {{'state_dict': ...}} "
            "saved with torch.save (a whole pickled module cannot be loaded safely)") from None
    wrapped = isinstance(loaded, dict) and "state_dict" in loaded
    state = loaded["state_dict"] if wrapped else loaded
    if not isinstance(state, dict) or not state or not all(isinstance(v, torch.Tensor) for v in state.values()):
        raise CheckpointError(f"zoo checkpoint {path} holds a {type(state).__name__} that is not a "
                              "state_dict (a dict of parameter names to tensors)")
    names = list(state)
    if all(n.startswith("module.") for n in names):  # saved from nn.DataParallel
        state = {n.removeprefix("module."): v for n, v in state.items()}
    extra = loaded if wrapped else {}
    epoch = extra.get("epoch")
    return {"state_dict": state, "normalization": extra.get("normalization"),
            "labels": extra.get("labels"), "epoch": int(epoch) if isinstance(epoch, int) else 0}


def check_fit(model: nn.Module, state: Mapping[str, torch.Tensor], path: str | os.PathLike,
              arch: str) -> None:
    """``state`` has exactly the keys and shapes of ``model``'s state_dict; else a
    :class:`CheckpointError` naming the file and the missing, unexpected and mis-shaped keys."""
    expected = model.state_dict()
    missing = [k for k in expected if k not in state]
    unexpected = [k for k in state if k not in expected]
    shapes = [f"{k} (file {tuple(state[k].shape)}, model {tuple(v.shape)})"
              for k, v in expected.items() if k in state and tuple(state[k].shape) != tuple(v.shape)]
    if missing or unexpected or shapes:
        parts = [f"{label} {names[:8]}{' ...' if len(names) > 8 else ''}"
                 for label, names in (("missing keys", missing), ("unexpected keys", unexpected),
                                      ("shape mismatches", shapes)) if names]
        raise CheckpointError(f"zoo checkpoint {path} does not match the architecture {arch}: "
                              + "; ".join(parts))


def load_into(model: nn.Module, state: Mapping[str, torch.Tensor], path, arch: str) -> nn.Module:
    """``model`` with the weights of ``state`` (checked by :func:`check_fit`), in eval mode."""
    check_fit(model, state, path, arch)
    model.load_state_dict({k: v.to(torch.float32) if v.is_floating_point() else v for k, v in state.items()})
    return model.eval()


def normalization(checkpoint: Mapping, configured: Mapping | None, x_train: np.ndarray,
                  path) -> tuple[dict, str]:
    """(``{"mean", "std"}``, source): the checkpoint's, the zoo config's or the training
    set's channel statistics (module doc); lengths are checked against the channels."""
    from intraclass.augment import channel_stats

    channels = x_train.shape[-1]
    for stats, source in ((checkpoint.get("normalization"), "checkpoint"), (configured, "zoo config")):
        if stats:
            mean, std = list(stats.get("mean", [])), list(stats.get("std", []))
            if len(mean) != channels or len(std) != channels or min(std) <= 0:
                raise CheckpointError(f"normalization of {source} ({path}): mean {mean} and std {std} "
                                      f"must give {channels} channel(s), std > 0")
            return {"mean": [float(m) for m in mean], "std": [float(s) for s in std]}, source
    mean, std = channel_stats(x_train)
    return {"mean": mean.tolist(), "std": std.tolist()}, "training set"


# ------------------------------------------------------------------------ the jobs

def _evaluate(model: nn.Module, data, stats: dict, device: torch.device, batch: int) -> tuple[dict, np.ndarray]:
    """Float32 accuracies and losses on the training subset and the test split, and the
    per-example test correctness, by training's own :func:`intraclass.train.evaluate_examples`."""
    from intraclass.augment import Normalizer
    from intraclass.train import evaluate_examples

    normalize = Normalizer(stats["mean"], stats["std"], device=device, contiguous=device.type != "cuda")
    values, correct = {}, None
    for split, x, y in (("train", data.x_train, data.y_train), ("test", data.x_test, data.y_test)):
        images = torch.from_numpy(np.ascontiguousarray(x)).to(device)
        labels = torch.from_numpy(np.asarray(y, dtype=np.int64)).to(device)
        hits, loss = evaluate_examples(model, images, labels, normalize, batch, autocast=False)
        values[f"{split}_acc"], values[f"{split}_loss"] = int(hits.sum()) / max(len(hits), 1), loss
        correct = hits
    return values, correct


def _unhealthy(model: nn.Module, values: dict) -> str | None:
    """Why an imported model counts as diverged (non-finite weights or losses), else None."""
    from intraclass.train import nonfinite_tensors

    bad = nonfinite_tensors(model)
    if bad:
        return f"imported weights are not finite in {len(bad)} tensor(s), e.g. {bad[0]}"
    losses = [f"{s} loss {values[f'{s}_loss']}" for s in ("train", "test") if not math.isfinite(values[f"{s}_loss"])]
    return f"evaluation of the imported weights: {', '.join(losses)}" if losses else None


def _write(outputs, model: nn.Module, spec: dict, hparams: dict, labels: str, epoch: int,
           stats: dict, correct: np.ndarray, metrics: dict) -> None:
    """The train rule's outputs (module doc), written as training writes them
    (:func:`intraclass.train.write_model_outputs`; an empty history)."""
    from intraclass.models import save_checkpoint
    from intraclass.train import write_model_outputs

    Path(outputs.ckpt).mkdir(parents=True, exist_ok=True)  # no evolution checkpoints in a zoo

    def save_model(path: Path) -> None:
        save_checkpoint(path, model, spec, hparams, labels, epoch, normalization=stats)

    write_model_outputs(outputs, save_model, [], correct, metrics)


def import_model(data_path: str | os.PathLike, checkpoint_path: str | os.PathLike, outputs,
                 model: Mapping, zoo: Mapping, training: Mapping,
                 log: logging.Logger | None = None,
                 check_sizes: Callable[[list[int], str], None] | None = None) -> dict:
    """Rule ``import_model`` (module doc). ``outputs``: :class:`intraclass.train.TrainOutputs`;
    ``model``: ``{"id", **hyperparameters}`` (the table row); ``zoo``: ``arch``,
    ``arch_options``, ``labels``, ``normalization`` (or None) and ``reported`` (the table's
    accuracies); ``training``: ``train_per_class``, ``data_seed``, ``device``,
    ``eval_batch_size``, ``threads``; ``check_sizes(widths, model id)``: run on the built
    model's measured layer widths (the study's k, :func:`intraclass.config.sizes_check`).
    Returns the metrics (also in metrics.json)."""
    from intraclass.models import build_model, measured_sites, place
    from intraclass.runtime import pick_device
    from intraclass.status import DIVERGED, OK
    from intraclass.train import environment, load_train_data

    log = log or log_default
    began = time.perf_counter()
    labels = str(zoo["labels"])
    data = load_train_data(data_path, labels, dict(training))
    checkpoint = read_zoo_checkpoint(checkpoint_path)
    if checkpoint["labels"] not in (None, labels):
        raise CheckpointError(f"zoo checkpoint {checkpoint_path} says it was trained on "
                              f"{checkpoint['labels']!r} labels, but zoo.labels is {labels!r}")
    hparams = {k: v for k, v in model.items() if k != "id"}
    spec = model_spec(zoo["arch"], zoo.get("arch_options") or {}, hparams, num_classes=data.num_classes,
                      in_channels=data.x_train.shape[-1])
    net = build_model(**spec)
    if check_sizes is not None:  # a builder's widths are known only now (docs/zoo.md)
        check_sizes([site.width for site in measured_sites(net)], str(model["id"]))
    net = load_into(net, checkpoint["state_dict"], checkpoint_path, zoo["arch"])
    stats, source = normalization(checkpoint, zoo.get("normalization"), data.x_train, checkpoint_path)
    device = pick_device(str(training.get("device", "auto")))
    net = place(net, device)
    values, correct = _evaluate(net, data, stats, device, int(training.get("eval_batch_size") or 1000))
    reason = _unhealthy(net, values)
    if reason is not None:
        correct = np.zeros_like(correct)
    metrics = {
        "id": model["id"], "status": OK if reason is None else DIVERGED, "reason": reason, **values,
        "epochs_run": None, "early_stopped": None, "wall_time_s": time.perf_counter() - began,
        "n_train": len(data.x_train), "n_test": len(data.x_test), "num_classes": int(data.num_classes),
        "labels": labels, "arch_spec": spec, "hparams": dict(model), "imported_from": str(checkpoint_path),
        "normalization_source": source, "table_accuracies": dict(zoo.get("reported") or {}),
        **environment(device, torch.get_num_threads(), False),
    }
    _write(outputs, net.cpu(), spec, dict(model), labels, checkpoint["epoch"], stats, correct, metrics)
    _log_result(log, model["id"], metrics, source)
    return metrics


def _log_result(log: logging.Logger, model_id: str, metrics: dict, source: str) -> None:
    if metrics["status"] != "ok":
        log.warning("imported %s: status %s (%s); later stages skip it", model_id, metrics["status"],
                    metrics["reason"])
        return
    log.info("imported %s: train acc %.4f, test acc %.4f (normalization: %s)", model_id,
             metrics["train_acc"], metrics["test_acc"], source)
    for key, reported in metrics["table_accuracies"].items():
        if abs(reported - metrics[key]) > 0.01:
            log.warning("%s: the zoo table gives %s %.4f, the evaluation here %.4f (used): another "
                        "split, preprocessing or labels?", model_id, key, reported, metrics[key])


def import_init(init_path: str | os.PathLike, model_path: str | os.PathLike,
                out_path: str | os.PathLike, log: logging.Logger | None = None) -> Path:
    """Rule ``import_init``: the zoo's initial weights as ``init.pt`` (epoch 0), with the
    spec, hyperparameters, labels and normalization of the imported ``model.pt``."""
    from intraclass.models import build_model, read_checkpoint, save_checkpoint

    log = log or log_default
    final = read_checkpoint(model_path)
    checkpoint = read_zoo_checkpoint(init_path)
    spec = final["arch_spec"]
    net = load_into(build_model(**spec), checkpoint["state_dict"], init_path, spec["arch"])
    path = save_checkpoint(out_path, net, spec, final["hparams"], final["labels"], 0,
                           normalization=final["normalization"])
    log.info("initial weights of %s from %s", final["hparams"].get("id"), init_path)
    return path


# ------------------------------------------------------------------ an example builder

class ExampleCNN(nn.Module):
    """A plain ReLU CNN following the measured-site protocol: ``layers`` blocks of
    conv3x3 -> BatchNorm -> ReLU -> 2x2 max-pool (channels ``width * 2**i``), a global
    average pool and a linear head. Sites: each BatchNorm's output, max over space."""

    def __init__(self, num_classes: int, in_channels: int, width: int, layers: int):
        super().__init__()
        blocks, previous = [], in_channels
        for i in range(layers):
            out = width * 2**i
            blocks.append(nn.Sequential(nn.Conv2d(previous, out, 3, padding=1, bias=False),
                                        nn.BatchNorm2d(out), nn.ReLU(), nn.MaxPool2d(2, ceil_mode=True)))
            previous = out
        self.blocks = nn.Sequential(*blocks)
        self.fc = nn.Linear(previous, num_classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.fc(torch.flatten(nn.functional.adaptive_avg_pool2d(self.blocks(x), 1), 1))

    def measured_sites(self) -> list[MeasuredSite]:
        return [MeasuredSite(f"blocks.{i}.1", block[1].num_features, "space", block[1])
                for i, block in enumerate(self.blocks)]


def example_cnn(num_classes: int, in_channels: int, hparams: Mapping, base_width: int = 8,
                layers: int = 2) -> nn.Module:
    """A builder (``zoo.arch: intraclass.zoo_import:example_cnn``, or a grid study's
    ``arch.name``): :class:`ExampleCNN` with ``round(base_width * hparams["width"])``
    channels in its first block and ``round(layers * hparams["depth"])`` blocks: it scales
    itself by the model's width and depth factors, each 1 when absent (a zoo table without
    that column)."""
    width = round(base_width * float(hparams.get("width") or 1.0))
    blocks = round(layers * float(hparams.get("depth") or 1.0))
    return ExampleCNN(num_classes, in_channels, max(width, 1), max(blocks, 1))
