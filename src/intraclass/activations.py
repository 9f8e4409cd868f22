"""Activation cache: the pre-activations of every measured site, stored in Zarr v3.

What is stored (paper section 2.1; docs/measures.md, "Representation"): for each sample and
each neuron (one unit of a measured site the model declares,
:func:`intraclass.models.measured_sites`; for the paper's CNNs one channel of a BN->ReLU
site), the *pre-activation* -- e.g. the batch-norm output, before the ReLU -- reduced by
the site's reduction: a global max over space (CNNs) or over tokens (ViT),
:func:`intraclass.archspec.reduce_output`. Post-ReLU activations are ``max(0, .)`` of it
(max commutes with ReLU), so every measure (c1-c4) reads this one array per layer.
Extraction hooks the declared sites' modules; it never looks at module types.

Store layout (one directory ``{checkpoint}.zarr``, a Zarr v3 group)::

    layers/{site}   float16|float32 (samples, neurons), chunks (block, neurons)
    fine            int64 (samples,)    fine labels
    coarse          int64 (samples,)    superclass labels; absent when the dataset has none
    indices         int64 (samples,)    rows of the dataset split the samples come from
    attributes      format, layer_names, neurons, dtype, compressor, model_id, checkpoint,
                    epoch, sample_source, has_coarse, nonfinite, ..., complete

Chunks hold every neuron of a layer and a large block of samples, because the measures
read whole layers over all samples. A store is written under a temporary sibling name
(:func:`intraclass.runtime.atomic_target`) and renamed only once every chunk and the
``complete`` flag are on disk, so a killed job never leaves a store :func:`open_store`
accepts. Extraction streams: each batch goes into per-layer chunk buffers that are
flushed as whole chunks, so memory is one batch plus one chunk per layer, whatever the
number of samples.

Integrity: every chunk of every array ends with a CRC-32C of its stored bytes (Zarr v3's
``crc32c`` codec, after the compressor), checked on every read. A flipped bit or a
truncated chunk therefore fails the read with :class:`CorruptStoreError`, naming the
store, the array (layer) and the chunk, instead of giving wrong measures. Stores written
before checksums existed still open and read (their codec list says no checksum), with a
warning that their chunks are not verified; re-extracting them adds the checksums.

Leftovers: a killed extraction leaves its temporary sibling ``.{name}.partial-<pid>``
(and a killed swap an ``.{name}.old-<pid>``). A new :class:`StoreWriter` for the same path
removes all of them when it starts: Snakemake runs at most one job per output at a time
and locks the working directory against a second instance, so any such sibling belongs
to a job that is gone (a pid test would be wrong on a cluster, where the pid was another
node's).
"""

from __future__ import annotations

import contextlib
import itertools
import logging
import os
import shutil
import time
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import zarr
from zarr.codecs import Crc32cCodec, ZstdCodec

from intraclass.archspec import MeasuredSite, reduce_output
from intraclass.runtime import atomic_target, pick_device, replace_dir, require_keys

if TYPE_CHECKING:  # torch is imported where it runs: reading a store needs only numpy + zarr
    import torch
    from torch import nn

FORMAT = "intraclass.activations/1"
DTYPES = ("float16", "float32")
COMPRESSORS = ("zstd", "none")
SPLITS = ("train", "test")
# Target bytes per chunk: large enough that a whole-layer read is a few big sequential
# reads, small enough that the per-layer write buffers stay a few MiB (see benchmarks/).
DEFAULT_CHUNK_BYTES = 4 * 2**20
LAYERS_GROUP = "layers"

log = logging.getLogger(__name__)


class IncompleteStoreError(Exception):
    """An activation store that is unfinished, truncated or inconsistent."""


class CorruptStoreError(IncompleteStoreError):
    """A chunk of a store fails its checksum or cannot be decoded (the message names the
    store, the array and the chunk file)."""


# --------------------------------------------------------------------------- writing


def _compressors(name: str) -> list:
    """Zarr bytes-to-bytes codecs for ``compressor`` (``zstd``, level 3, or ``none``),
    always followed by a CRC-32C of the stored chunk (module docstring: integrity).

    Pre-activations are noisy floats: zstd saves only ~10-25% (benchmarks/README.md),
    so ``none`` is the choice when disk is cheap and reads must be fastest. (Blosc with
    byte shuffle compressed ~5% more but wrote about half as fast here.) The checksum
    costs 4 bytes per chunk.
    """
    if name == "zstd":
        return [ZstdCodec(level=3), Crc32cCodec()]
    if name == "none":
        return [Crc32cCodec()]
    raise ValueError(f"compressor must be one of {COMPRESSORS}, got {name!r}")


def remove_stale_siblings(path: str | os.PathLike) -> list[Path]:
    """Delete the temporary siblings (``.{name}.partial-*``, ``.{name}.old-*``) that killed
    writers of ``path`` left behind; returns what was removed (module docstring: leftovers)."""
    path = Path(path)
    stale = [p for pattern in (f".{path.name}.partial-*", f".{path.name}.old-*")
             for p in path.parent.glob(pattern)] if path.parent.is_dir() else []
    for p in stale:
        log.warning("removing %s, left by a killed extraction", p)
        if p.is_dir():
            shutil.rmtree(p, ignore_errors=True)
        else:
            p.unlink(missing_ok=True)
    return stale


def chunk_rows(n_samples: int, neurons: int, itemsize: int, chunk_bytes: int) -> int:
    """Samples per chunk: about ``chunk_bytes`` per chunk, the samples split evenly.

    Zarr stores an edge chunk at full size, so equal chunks (the last one at most a few
    rows short) keep the padding negligible even without compression.
    """
    count = -(-n_samples * neurons * itemsize // chunk_bytes)  # ceil: chunks per layer
    return -(-n_samples // max(1, count))


def _check_labels(name: str, values: Any, n: int) -> np.ndarray:
    array = np.asarray(values)
    if array.shape != (n,) or not np.issubdtype(array.dtype, np.integer):
        raise ValueError(f"{name} must be {n} integers, got shape {array.shape} dtype {array.dtype}")
    return array.astype(np.int64, copy=False)


class StoreWriter:
    """Stream (samples, neurons) blocks of every layer into a new store, atomically.

    ``layers`` is ``[(name, neurons), ...]`` in forward order; ``n_samples`` rows are
    appended in order by :meth:`append` (one list of (batch, neurons) arrays per call,
    any batch size); :meth:`close` checks that all rows came, sets ``complete`` and
    renames the temporary directory to ``path``. Used as a context manager, an exception
    removes the temporary directory and leaves any previous store at ``path`` untouched.
    """

    def __init__(self, path: str | os.PathLike, layers: Sequence[tuple[str, int]], n_samples: int,
                 *, fine: Any, coarse: Any = None, indices: Any = None, dtype: str = "float32",
                 compressor: str = "zstd", attrs: dict | None = None,
                 chunk_bytes: int = DEFAULT_CHUNK_BYTES):
        if dtype not in DTYPES:
            raise ValueError(f"dtype must be one of {DTYPES}, got {dtype!r}")
        _compressors(compressor)  # unknown name: fail before anything is written
        names = [str(name) for name, _ in layers]
        if not names or len(set(names)) != len(names) or any("/" in n or not n for n in names):
            raise ValueError(f"layer names must be unique, non-empty and without '/': {names}")
        if int(n_samples) < 1:
            raise ValueError(f"n_samples must be positive, got {n_samples}")
        self.path = Path(path)
        self.n_samples = n = int(n_samples)
        self.names = names
        self.neurons = [int(k) for _, k in layers]
        self.dtype = np.dtype(dtype)
        self.written = 0
        self.nonfinite = [0] * len(names)
        self.tmp = atomic_target(self.path)
        remove_stale_siblings(self.path)  # also the one a killed job with our pid left
        self.path.parent.mkdir(parents=True, exist_ok=True)
        indices = np.arange(n) if indices is None else indices
        labels = {"fine": _check_labels("fine", fine, n), "indices": _check_labels("indices", indices, n)}
        if coarse is not None:
            labels["coarse"] = _check_labels("coarse", coarse, n)

        try:
            self._create(labels, compressor, chunk_bytes, {
                "format": FORMAT, "layer_names": names, "neurons": self.neurons,
                "n_samples": n, "dtype": dtype, "compressor": compressor,
                "has_coarse": coarse is not None, **(attrs or {}), "complete": False})
        except BaseException:
            self.abort()
            raise

    def _create(self, labels: dict, compressor: str, chunk_bytes: int, attrs: dict) -> None:
        """Create the group, the label arrays and the empty layer arrays, with their buffers."""
        n = self.n_samples
        self.group = zarr.open_group(self.tmp, mode="w-")
        for key, values in labels.items():
            self.group.create_array(key, data=values, compressors=_compressors(compressor))
        layer_group = self.group.create_group(LAYERS_GROUP)
        self.arrays, self.buffers = [], []
        for name, k in zip(self.names, self.neurons):
            block = chunk_rows(n, k, self.dtype.itemsize, chunk_bytes)
            # NaN fill: a chunk that never got written reads as NaN, never as plausible zeros.
            self.arrays.append(layer_group.create_array(
                name, shape=(n, k), chunks=(block, k), dtype=self.dtype, fill_value=np.nan,
                compressors=_compressors(compressor), config={"write_empty_chunks": True}))
            self.buffers.append(np.empty((block, k), dtype=self.dtype))
        self.group.attrs.update(attrs)

    def append(self, batch: Sequence[np.ndarray]) -> None:
        """Append the next rows: one (rows, neurons) array per layer, same rows for all."""
        if len(batch) != len(self.names):
            raise ValueError(f"got {len(batch)} layers, the store has {len(self.names)}")
        rows = {np.shape(a)[0] for a in batch}
        if len(rows) != 1:
            raise ValueError(f"layers disagree on the number of rows: {sorted(rows)}")
        rows = rows.pop()
        if self.written + rows > self.n_samples:
            raise ValueError(f"{self.written + rows} rows exceed the store's {self.n_samples}")
        for i, values in enumerate(batch):
            values = np.asarray(values)
            if values.shape != (rows, self.neurons[i]):
                raise ValueError(f"layer {self.names[i]}: expected shape (rows, {self.neurons[i]}), "
                                 f"got {values.shape}")
            with np.errstate(over="ignore"):  # float16 overflow becomes inf: counted below
                stored = values.astype(self.dtype, copy=False)
            self.nonfinite[i] += int(stored.size - np.count_nonzero(np.isfinite(stored)))
            self._buffer(i, stored, self.written)
        self.written += rows

    def _buffer(self, i: int, values: np.ndarray, start: int) -> None:
        """Copy rows ``start:start+len(values)`` of layer i into its buffer; flush full chunks."""
        buffer, block = self.buffers[i], self.buffers[i].shape[0]
        done = 0
        while done < len(values):
            row = start + done
            offset = row % block
            take = min(block - offset, len(values) - done)
            buffer[offset:offset + take] = values[done:done + take]
            done += take
            end = row + take
            if end % block == 0 or end == self.n_samples:  # chunk full, or the last one
                chunk_start = end - (offset + take)
                self.arrays[i][chunk_start:end] = buffer[:offset + take]

    def close(self) -> Path:
        """Mark complete and move into place; returns the final path."""
        if self.written != self.n_samples:
            raise IncompleteStoreError(f"store {self.path}: {self.written} of {self.n_samples} "
                                       "samples were written")
        self.group.attrs.update({"nonfinite": dict(zip(self.names, self.nonfinite)),
                                 "complete": True})
        return replace_dir(self.tmp, self.path)  # an older store goes only once this one is whole

    def abort(self) -> None:
        shutil.rmtree(self.tmp, ignore_errors=True)

    def __enter__(self) -> StoreWriter:
        return self

    def __exit__(self, exc_type, exc, tb) -> None:
        if exc_type is not None:
            self.abort()


# --------------------------------------------------------------------------- reading


class ActivationStore:
    """A complete store, opened read-only; the layers are loaded only when asked for.

    ``fine``, ``coarse`` (None without a hierarchy) and ``indices`` are int64 arrays of
    length ``len(store)``; ``attrs`` is the group's attribute dict.
    """

    def __init__(self, path: Path, group: zarr.Group, attrs: dict, fine: np.ndarray,
                 coarse: np.ndarray | None, indices: np.ndarray):
        self.path, self._group, self.attrs = path, group, attrs
        self.fine, self.coarse, self.indices = fine, coarse, indices
        self.layer_names: list[str] = list(attrs["layer_names"])
        self.neurons: list[int] = [int(k) for k in attrs["neurons"]]

    def __len__(self) -> int:
        return len(self.fine)

    def __repr__(self) -> str:
        return (f"ActivationStore({str(self.path)!r}: {len(self)} samples, "
                f"{len(self.layer_names)} layers, {sum(self.neurons)} neurons)")

    def layers(self, names: Sequence[str] | None = None) -> list[np.ndarray]:
        """The (samples, neurons) float32 pre-activations of ``names`` (default: all layers)."""
        names = self.layer_names if names is None else list(names)
        unknown = [n for n in names if n not in self.layer_names]
        if unknown:
            raise KeyError(f"store {self.path} has no layers {unknown}; it has {self.layer_names}")
        layers = self._group[LAYERS_GROUP]
        return [read_checked(self.path, layers[n], f"layer {n}").astype(np.float32, copy=False)
                for n in names]

    def layer(self, name: str) -> np.ndarray:
        return self.layers([name])[0]


def _chunk_file(array: zarr.Array, coords: tuple[int, ...]) -> str:
    """The chunk's file inside the store, e.g. ``layers/conv.bn/c/3/0`` (Zarr v3's default
    ``/``-separated chunk keys)."""
    return f"{array.path}/c/" + "/".join(str(i) for i in coords)


def read_checked(path: Path, array: zarr.Array, what: str) -> np.ndarray:
    """All of ``array``; a chunk that fails its checksum or cannot be decoded raises
    :class:`CorruptStoreError` naming the store, ``what`` (e.g. ``layer conv.bn``), the
    chunk file and the cause.

    The whole array is read at once (Zarr decodes its chunks concurrently); only after a
    failure are the chunks read one by one, to name every bad one.
    """
    try:
        return array[...]
    except (ValueError, RuntimeError, OSError) as error:  # crc mismatch, zstd, short read
        first = error
    bad = []
    for index in np.ndindex(*array.cdata_shape):  # chunk grid coordinates
        window = tuple(slice(i * c, (i + 1) * c) for i, c in zip(index, array.chunks))
        try:
            array[window]
        except (ValueError, RuntimeError, OSError) as error:
            bad.append(f"{_chunk_file(array, index)} ({error})")
    detail = "; ".join(bad) if bad else f"({first})"
    raise CorruptStoreError(f"activation store {path}: {what} is corrupt: {detail}. "
                            "Delete the store and rerun its extract job.") from first


def _has_checksums(array: zarr.Array) -> bool:
    return any(isinstance(codec, Crc32cCodec) for codec in array.metadata.codecs)


def open_store(path: str | os.PathLike) -> ActivationStore:
    """Open a finished activation store; :class:`IncompleteStoreError` names what is wrong.

    Rejected: a store without the ``complete`` flag (killed mid-write, or a temporary
    directory), one missing a listed layer array or a label array, or one whose arrays
    disagree on the number of samples or miss written chunks.
    """
    path = Path(path)
    if not path.is_dir():
        raise FileNotFoundError(f"activation store {path} does not exist")
    try:
        group = zarr.open_group(path, mode="r")
    except (zarr.errors.GroupNotFoundError, ValueError) as error:
        raise IncompleteStoreError(f"{path} is not a Zarr group (no zarr.json): {error}") from error
    attrs = dict(group.attrs)
    if attrs.get("format") != FORMAT:
        raise IncompleteStoreError(f"{path} is not an activation store (format "
                                   f"{attrs.get('format')!r}, expected {FORMAT!r})")
    if attrs.get("complete") is not True:
        raise IncompleteStoreError(f"activation store {path} is incomplete: the 'complete' flag "
                                   "is not set (the job writing it did not finish)")
    names = list(attrs.get("layer_names") or [])
    expected = {f"{LAYERS_GROUP}/{n}": int(k) for n, k in zip(names, attrs.get("neurons", []))}
    if not names or len(expected) != len(names):
        raise IncompleteStoreError(f"activation store {path}: attributes layer_names/neurons "
                                   f"are missing or disagree ({attrs.get('layer_names')}, "
                                   f"{attrs.get('neurons')})")
    wanted = ["fine", "indices"] + (["coarse"] if attrs.get("has_coarse") else []) + list(expected)
    arrays = {}
    for key in wanted:
        try:
            arrays[key] = group[key]
        except KeyError:
            arrays[key] = None
    missing = [key for key, array in arrays.items() if array is None]
    if missing:
        raise IncompleteStoreError(f"activation store {path} is missing arrays {missing}")
    n = int(attrs.get("n_samples", -1))
    wrong = [f"{key} {array.shape}" for key, array in arrays.items()
             if array.shape[0] != n or (key in expected and array.shape != (n, expected[key]))]
    if wrong:
        raise IncompleteStoreError(f"activation store {path}: arrays disagree with its "
                                   f"{n} samples x listed neurons: {wrong}")
    unwritten = [key for key in expected if arrays[key].nchunks_initialized != arrays[key].nchunks]
    if unwritten:
        raise IncompleteStoreError(f"activation store {path}: layers {unwritten} miss chunks")
    if not all(_has_checksums(array) for array in arrays.values()):
        log.warning("activation store %s has no chunk checksums (written by an older version): "
                    "its chunks are not verified; re-extract it to add them", path)
    labels = {key: read_checked(path, arrays[key], f"array {key}")
              for key in ("fine", "coarse", "indices") if arrays.get(key) is not None}
    return ActivationStore(path, group, attrs, labels["fine"], labels.get("coarse"), labels["indices"])


# --------------------------------------------------------------------------- capture


def spatial_max(t: torch.Tensor) -> torch.Tensor:
    """(N, C, *spatial) -> (N, C) by a max over space; (N, C) is returned as is."""
    return reduce_output(t, "space")


#: A site as the capture functions take it: a declared :class:`MeasuredSite`, or a
#: ``(name, module)`` pair read as a site reduced over space whose width the data tells.
SiteLike = MeasuredSite | tuple[str, "nn.Module"]


def as_site(site: SiteLike) -> MeasuredSite:
    """``site`` as a :class:`MeasuredSite` (a pair gets reduction ``space``, width None)."""
    if isinstance(site, MeasuredSite):
        return site
    name, module = site
    return MeasuredSite(str(name), None, "space", module)


class SiteRecorder:
    """Forward hooks on the sites' modules: record each site's reduced output
    (:func:`intraclass.archspec.reduce_output`: max over space or over tokens).

    ``pop()`` returns, in site order, one (batch, neurons) float32 tensor per site for
    the last forward pass and clears them; a site that ran zero or several times in
    that pass is an error (the model is not the site list's model).
    """

    def __init__(self, sites: Sequence[SiteLike]):
        self.sites = [as_site(site) for site in sites]
        self.handles: list = []
        self.outputs: list[list[torch.Tensor]] = [[] for _ in self.sites]

    def __enter__(self) -> SiteRecorder:
        for i, site in enumerate(self.sites):
            self.handles.append(site.module.register_forward_hook(self._hook(i)))
        return self

    def _hook(self, i: int) -> Callable:
        reduction = self.sites[i].reduction

        def record(module, inputs, output):
            self.outputs[i].append(reduce_output(output.detach(), reduction).float())
        return record

    def pop(self) -> list[torch.Tensor]:
        counts = {site.name: len(out) for site, out in zip(self.sites, self.outputs)}
        if any(c != 1 for c in counts.values()):
            raise RuntimeError(f"each measured site must run once per forward pass: {counts}")
        batch = [out[0] for out in self.outputs]
        self.outputs = [[] for _ in self.sites]
        return batch

    def __exit__(self, *exc) -> None:
        for handle in self.handles:
            handle.remove()
        self.handles = []


def iter_preactivations(model: nn.Module, sites: Sequence[SiteLike],
                        images: np.ndarray, indices: np.ndarray,
                        preprocess: Callable[[torch.Tensor], torch.Tensor], *,
                        batch_size: int, device: torch.device) -> Iterator[list[np.ndarray]]:
    """Yield, per batch of ``indices``, one (batch, neurons) float32 array per site.

    ``images`` is the uint8 (N, H, W, C) split; ``preprocess`` maps a uint8 NHWC tensor
    on ``device`` to the model's float NCHW input (the training's normalization). Inference
    mode and eval mode (BN running statistics, no dropout), in float32 on every device: the
    cache is the measures' input, so it must not carry bf16 rounding (about 0.4% relative)
    nor differ between a GPU and a CPU run. The model runs in the layout it has
    (:func:`intraclass.models.place`: channels_last on CUDA, as in training).
    """
    import torch

    if batch_size < 1:
        raise ValueError(f"batch_size must be positive, got {batch_size}")
    was_training = model.training
    model.eval()
    try:
        with SiteRecorder(sites) as recorder:
            for start in range(0, len(indices), batch_size):
                rows = np.asarray(indices[start:start + batch_size])
                # Grad state is entered per batch, so it never leaks to the consumer.
                with torch.inference_mode():
                    model(preprocess(torch.from_numpy(images[rows]).to(device, non_blocking=True)))
                    batch = recorder.pop()
                yield [t.cpu().numpy() for t in batch]
    finally:
        model.train(was_training)


# --------------------------------------------------------------------------- samples


def extraction_indices(dataset, split: str, per_class: int | None, seed: int,
                       train_index: np.ndarray) -> np.ndarray:
    """Rows of ``split`` to extract (sorted int64): the training set the model saw
    (``train_index``, from :func:`intraclass.data.training_indices`) or the whole test
    set, then ``per_class`` samples per fine class drawn with ``seed`` (None: all)."""
    from intraclass.data import DatasetError, stratified_indices

    if split == "train":
        base = np.asarray(train_index, dtype=np.int64)
    elif split == "test":
        base = np.arange(len(dataset.y_test), dtype=np.int64)
    else:
        raise ValueError(f"extract split must be one of {SPLITS}, got {split!r}")
    fine = np.asarray(dataset.labels(split, "fine"))[base]
    try:
        return base[stratified_indices(fine, per_class, seed, dataset.fine_names)]
    except DatasetError as error:  # name the setting, as training_indices does for its own
        raise DatasetError(f"extraction subset: {error} (extract.per_class in the config; "
                           "at most training.train_per_class)") from None


# --------------------------------------------------------------------------- pipeline


def write_preactivations(path: str | os.PathLike, model: nn.Module, images: np.ndarray,
                         indices: np.ndarray, fine: np.ndarray, coarse: np.ndarray | None,
                         preprocess: Callable[[torch.Tensor], torch.Tensor], *,
                         sites: Sequence[SiteLike], batch_size: int,
                         device: torch.device, dtype: str = "float32", compressor: str = "zstd",
                         attrs: dict | None = None, chunk_bytes: int = DEFAULT_CHUNK_BYTES,
                         progress: Callable[[int, int], None] | None = None) -> Path:
    """Run ``images[indices]`` through ``model`` and stream the site pre-activations to a store.

    ``fine``/``coarse`` are the labels of the selected samples (aligned with ``indices``).
    Each layer's width is what its site's output gives in the first batch; a declared
    width that differs is an error. Returns the store's path; nothing is at ``path``
    until the store is complete.
    """
    indices = np.asarray(indices, dtype=np.int64)
    if len(indices) < 1:
        raise ValueError("n_samples must be positive, got 0 indices to extract")
    sites = [as_site(site) for site in sites]
    batches = iter_preactivations(model, sites, images, indices, preprocess,
                                  batch_size=batch_size, device=device)
    with contextlib.closing(batches):
        first = next(batches)
        layers = site_layers(sites, first)
        with StoreWriter(path, layers, len(indices), fine=fine, coarse=coarse, indices=indices,
                         dtype=dtype, compressor=compressor, attrs=attrs,
                         chunk_bytes=chunk_bytes) as writer:
            for batch in itertools.chain([first], batches):
                writer.append(batch)
                if progress is not None:
                    progress(writer.written, len(indices))
            return writer.close()


def site_layers(sites: Sequence[MeasuredSite], batch: Sequence[np.ndarray]) -> list[tuple[str, int]]:
    """``(name, neurons)`` of each site from one batch of its (rows, neurons) outputs;
    ``ValueError`` when a site's output disagrees with its declared width."""
    layers = [(site.name, int(np.shape(values)[1])) for site, values in zip(sites, batch)]
    wrong = [f"{site.name} declares {site.width}, gives {k}"
             for site, (_, k) in zip(sites, layers) if site.width is not None and site.width != k]
    if wrong:
        raise ValueError(f"measured sites disagree with their outputs: {'; '.join(wrong)}")
    return layers


def checkpoint_file(weights: str | os.PathLike, checkpoint: str) -> Path:
    """``weights`` is ``model.pt`` for ``final``, else the ckpt directory with ``{checkpoint}.pt``."""
    weights = Path(weights)
    if checkpoint == "final":
        return weights
    if not checkpoint.startswith("epoch") or not checkpoint[5:].isdigit():
        raise ValueError(f"checkpoint must be 'final' or 'epoch<E>', got {checkpoint!r}")
    return weights / f"{checkpoint}.pt"


def extract_checkpoint(weights: str | os.PathLike, data: str | os.PathLike,
                       out: str | os.PathLike, *, checkpoint: str, extract: dict,
                       training: dict) -> Path:
    """The ``extract`` stage (docs/stages.md): one checkpoint -> one ``{checkpoint}.zarr``.

    ``extract``: ``split``, ``per_class``, ``dtype``, ``batch_size``, ``compressor``,
    ``seed``; ``training``: ``train_per_class``, ``data_seed``, ``device``. The inputs
    are normalized exactly as in training (:mod:`intraclass.train`): per-channel mean and
    std of the training subset, :class:`intraclass.augment.Normalizer`.
    """
    from intraclass.augment import Normalizer
    from intraclass.data import load_dataset, training_indices
    from intraclass.models import load_checkpoint, measured_sites

    require_keys(extract, ("split", "per_class", "dtype", "batch_size", "compressor", "seed"), "extract")
    require_keys(training, ("train_per_class", "data_seed", "device"), "training")
    if extract["dtype"] not in DTYPES or extract["compressor"] not in COMPRESSORS:
        raise ValueError(f"extract.dtype must be in {DTYPES} and extract.compressor in "
                         f"{COMPRESSORS}; got {extract['dtype']!r}, {extract['compressor']!r}")
    device = pick_device(str(training["device"]))
    path = checkpoint_file(weights, checkpoint)
    model, ckpt = load_checkpoint(path, device)
    dataset = load_dataset(data)
    split = extract["split"]
    train_index = training_indices(dataset, training["train_per_class"], training["data_seed"])
    indices = extraction_indices(dataset, split, extract["per_class"], extract["seed"], train_index)
    normalize = Normalizer.from_checkpoint(ckpt, device, contiguous=device.type != "cuda")
    images = dataset.x_train if split == "train" else dataset.x_test
    fine = np.asarray(dataset.labels(split, "fine"))[indices]
    coarse = np.asarray(dataset.labels(split, "coarse"))[indices] if dataset.has_hierarchy else None
    sites = measured_sites(model)
    attrs = {
        "model_id": str(ckpt["hparams"].get("id", "")), "checkpoint": checkpoint,
        "epoch": int(ckpt["epoch"]), "trained_on": str(ckpt["labels"]), "weights": str(path),
        "sample_source": {"data": str(data), "split": split,
                          "train_per_class": training["train_per_class"],
                          "data_seed": training["data_seed"],
                          "per_class": extract["per_class"], "seed": extract["seed"]},
        "fine_names": list(dataset.fine_names),
        "coarse_names": list(dataset.coarse_names) if dataset.has_hierarchy else None,
        "device": str(device), "precision": "float32",
        # for the paper's CNNs: "global max over space of the BN output (before ReLU)"
        "pooling": "; ".join(dict.fromkeys(site.describe() for site in sites)),
    }
    log.info("extracting %s: %d samples (%s split) x %d sites (%d neurons) on %s",
             path, len(indices), split, len(sites), sum(site.width for site in sites), device)
    started, last = time.perf_counter(), [0.0]

    def progress(done: int, total: int) -> None:
        elapsed = time.perf_counter() - started
        if done == total or elapsed - last[0] >= 10:
            last[0] = elapsed
            log.info("%d/%d samples, %.1f s", done, total, elapsed)

    return write_preactivations(out, model, images, indices, fine, coarse, normalize,
                                sites=sites, batch_size=int(extract["batch_size"]),
                                device=device, dtype=extract["dtype"],
                                compressor=extract["compressor"], attrs=attrs, progress=progress)
