"""The dataset file (``results/data/{dataset}.npz``) and its in-memory form, :class:`Dataset`.

One format for every stage (docs/stages.md, "prepare_dataset"):

    x_train, x_test        uint8, N x H x W x C (NHWC)
    y_train, y_test        int64, N: fine labels in 0 .. len(fine_names) - 1
    coarse_train/_test     int64, N: superclass labels (only when a hierarchy exists)
    fine_names             str array, one name per fine class
    coarse_names           str array, one name per superclass (only with the coarse labels)

A :class:`Dataset` validates itself when constructed, so a malformed dataset can be
neither written nor read: dtypes, shapes, label ranges, and the hierarchy (every fine
class in exactly one superclass, every superclass with at least one fine class; the
paper's c1/c2 compare a subclass C_i with the rest of its superclass S_s(i), Section 3).
"""

from __future__ import annotations

import hashlib
import os
import zipfile
import zlib
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from intraclass.names import LABEL_LEVELS
from intraclass.runtime import write_atomic

REQUIRED_KEYS = ("x_train", "x_test", "y_train", "y_test", "fine_names")
HIERARCHY_KEYS = ("coarse_train", "coarse_test", "coarse_names")
SPLITS = ("train", "test")
LEVELS = LABEL_LEVELS  # fine, coarse (intraclass.names)


class DatasetError(ValueError):
    """A dataset file or source is missing, corrupt or malformed (the message names it)."""


@dataclass(frozen=True, eq=False)
class Dataset:
    """Images and (hierarchical) labels of one dataset; validated on construction."""

    x_train: np.ndarray  # uint8, (N_train, H, W, C)
    x_test: np.ndarray  # uint8, (N_test, H, W, C)
    y_train: np.ndarray  # int64, (N_train,) fine labels
    y_test: np.ndarray  # int64, (N_test,)
    fine_names: list[str]
    coarse_train: np.ndarray | None = None  # int64, (N_train,) superclass labels
    coarse_test: np.ndarray | None = None
    coarse_names: list[str] | None = None
    fine_to_coarse: np.ndarray | None = field(init=False, default=None)  # int64, (num_fine,)

    def __post_init__(self):
        object.__setattr__(self, "fine_names", _names(self.fine_names, "fine_names"))
        if self.coarse_names is not None:
            object.__setattr__(self, "coarse_names", _names(self.coarse_names, "coarse_names"))
        object.__setattr__(self, "fine_to_coarse", _validate(self))

    @property
    def num_fine(self) -> int:
        return len(self.fine_names)

    @property
    def num_coarse(self) -> int | None:
        return None if self.coarse_names is None else len(self.coarse_names)

    @property
    def has_hierarchy(self) -> bool:
        return self.coarse_names is not None

    @property
    def image_shape(self) -> tuple[int, int, int]:
        """(H, W, C) of every image."""
        return tuple(self.x_train.shape[1:])

    def labels(self, split: str, level: str = "fine") -> np.ndarray:
        """Fine or coarse (superclass) labels of the ``"train"`` or ``"test"`` split."""
        if split not in SPLITS:
            raise ValueError(f"split must be one of {SPLITS}, not {split!r}")
        if level not in LEVELS:
            raise ValueError(f"level must be one of {LEVELS}, not {level!r}")
        if level == "coarse" and not self.has_hierarchy:
            raise DatasetError(
                "this dataset has no superclass (coarse) labels; train it with labels: fine"
            )
        prefix = "y" if level == "fine" else "coarse"
        return getattr(self, f"{prefix}_{split}")

    def subset(self, train_idx: np.ndarray, test_idx: np.ndarray) -> Dataset:
        """The same dataset restricted to the given train and test sample indices."""
        take = lambda a, idx: None if a is None else a[idx]  # noqa: E731
        return Dataset(
            x_train=self.x_train[train_idx],
            x_test=self.x_test[test_idx],
            y_train=self.y_train[train_idx],
            y_test=self.y_test[test_idx],
            fine_names=self.fine_names,
            coarse_train=take(self.coarse_train, train_idx),
            coarse_test=take(self.coarse_test, test_idx),
            coarse_names=self.coarse_names,
        )

    def to_arrays(self) -> dict[str, np.ndarray]:
        """The arrays of the ``.npz`` format (names as unicode arrays: no pickle needed)."""
        arrays = {
            "x_train": self.x_train,
            "x_test": self.x_test,
            "y_train": self.y_train,
            "y_test": self.y_test,
            "fine_names": np.array(self.fine_names, dtype=str),
        }
        if self.has_hierarchy:
            arrays["coarse_train"] = self.coarse_train
            arrays["coarse_test"] = self.coarse_test
            arrays["coarse_names"] = np.array(self.coarse_names, dtype=str)
        return arrays

    def summary(self) -> str:
        """One line for the logs: sizes, image shape, classes."""
        h, w, c = self.image_shape
        text = (
            f"{len(self.y_train)} train + {len(self.y_test)} test images of {h}x{w}x{c}, "
            f"{self.num_fine} classes"
        )
        if self.has_hierarchy:
            text += f" in {self.num_coarse} superclasses"
        return text


def _names(names, key: str) -> list[str]:
    if isinstance(names, np.ndarray):
        if names.ndim != 1 or names.dtype.kind != "U":
            raise DatasetError(f"{key} must be a 1-D string array, got {names.dtype} {names.shape}")
        names = names.tolist()
    if isinstance(names, str) or not all(isinstance(n, str) for n in names):
        raise DatasetError(f"{key} must be a list of strings")
    names = list(names)
    if not names:
        raise DatasetError(f"{key} is empty")
    if len(set(names)) != len(names):
        raise DatasetError(f"{key} has duplicate names: {sorted({n for n in names if names.count(n) > 1})}")
    return names


def _check_array(a, key: str, dtype, ndim: int) -> None:
    if not isinstance(a, np.ndarray):
        raise DatasetError(f"{key} must be a numpy array, got {type(a).__name__}")
    if a.dtype != dtype or a.ndim != ndim:
        raise DatasetError(
            f"{key} must be a {ndim}-D {np.dtype(dtype)} array, got {a.ndim}-D {a.dtype} {a.shape}"
        )


def _check_labels(labels: np.ndarray, key: str, n: int, num_classes: int, images_key: str) -> None:
    _check_array(labels, key, np.int64, 1)
    if len(labels) != n:
        raise DatasetError(f"{key} has {len(labels)} labels but {images_key} has {n} images")
    if n and (labels.min() < 0 or labels.max() >= num_classes):
        raise DatasetError(
            f"{key} has labels outside 0..{num_classes - 1} "
            f"(min {labels.min()}, max {labels.max()}) for {num_classes} named classes"
        )


def _validate(d: Dataset) -> np.ndarray | None:
    """Check dtypes, shapes, label ranges and the hierarchy; return the fine->coarse map."""
    for split in SPLITS:
        _check_array(getattr(d, f"x_{split}"), f"x_{split}", np.uint8, 4)
    if d.x_train.shape[1:] != d.x_test.shape[1:]:
        raise DatasetError(
            f"train and test images differ in shape: {d.x_train.shape[1:]} vs {d.x_test.shape[1:]}"
        )
    if len(d.x_train) == 0 or len(d.x_test) == 0 or min(d.x_train.shape[1:]) == 0:
        raise DatasetError(f"empty dataset: x_train {d.x_train.shape}, x_test {d.x_test.shape}")
    for split in SPLITS:
        n = len(getattr(d, f"x_{split}"))
        _check_labels(getattr(d, f"y_{split}"), f"y_{split}", n, d.num_fine, f"x_{split}")
    missing = np.flatnonzero(np.bincount(d.y_train, minlength=d.num_fine) == 0)
    if len(missing):
        raise DatasetError(f"fine classes without training images: {[d.fine_names[i] for i in missing]}")

    coarse = (d.coarse_train, d.coarse_test, d.coarse_names)
    if all(c is None for c in coarse):
        return None
    if any(c is None for c in coarse):
        raise DatasetError("coarse_train, coarse_test and coarse_names go together: give all three or none")
    for split in SPLITS:
        n = len(getattr(d, f"x_{split}"))
        _check_labels(getattr(d, f"coarse_{split}"), f"coarse_{split}", n, d.num_coarse, f"x_{split}")
    # Hierarchy: each fine class in exactly one superclass, over train and test together.
    fine = np.concatenate([d.y_train, d.y_test])
    sup = np.concatenate([d.coarse_train, d.coarse_test])
    pairs = np.unique(np.stack([fine, sup]), axis=1)  # (2, distinct (fine, coarse) pairs)
    per_fine = np.bincount(pairs[0], minlength=d.num_fine)
    split_classes = np.flatnonzero(per_fine > 1)
    if len(split_classes):
        f = split_classes[0]
        supers = [d.coarse_names[s] for s in pairs[1][pairs[0] == f]]
        raise DatasetError(
            f"not a hierarchy: fine class {d.fine_names[f]!r} has samples in several superclasses "
            f"{supers} ({len(split_classes)} such classes); every fine class must belong to exactly one"
        )
    empty = sorted(set(range(d.num_coarse)) - set(pairs[1].tolist()))
    if empty:
        raise DatasetError(f"superclasses without any fine class: {[d.coarse_names[s] for s in empty]}")
    fine_to_coarse = np.empty(d.num_fine, dtype=np.int64)
    fine_to_coarse[pairs[0]] = pairs[1]
    return fine_to_coarse


def save_dataset(dataset: Dataset, path: str | os.PathLike) -> Path:
    """Write ``dataset`` to ``path`` (.npz, deflate-compressed) atomically.

    The archive is written to a temporary sibling and renamed when complete, so a killed
    job never leaves a file that later stages accept. Zip entries carry a fixed timestamp,
    so the same dataset always gives the same bytes (same zlib).
    """

    def write_zip(tmp: Path) -> None:
        with open(tmp, "wb") as f:
            with zipfile.ZipFile(f, "w", compression=zipfile.ZIP_DEFLATED) as zf:
                for key, array in dataset.to_arrays().items():
                    info = zipfile.ZipInfo(f"{key}.npy", date_time=(1980, 1, 1, 0, 0, 0))
                    info.compress_type = zipfile.ZIP_DEFLATED
                    with zf.open(info, "w", force_zip64=True) as member:
                        np.lib.format.write_array(member, np.ascontiguousarray(array), allow_pickle=False)
            f.flush()
            os.fsync(f.fileno())

    return write_atomic(path, write_zip)


def content_digest(dataset: Dataset) -> str:
    """``sha256:<hex>`` of the dataset's content: every array of the ``.npz`` format, in a
    fixed order, each as its name, dtype, shape and C-order bytes.

    The contract between preparation and training (``results/data/{dataset}.sha256``,
    docs/stages.md): it changes exactly when the content changes, never with the file's
    time, the zip/zlib encoding or where the data came from (``root``, ``download``).
    """
    digest = hashlib.sha256()
    for key, array in sorted(dataset.to_arrays().items()):
        array = np.ascontiguousarray(array)
        digest.update(f"{key}|{array.dtype.str}|{array.shape}|".encode())
        digest.update(array.tobytes() if array.dtype.kind == "U" else memoryview(array).cast("B"))
    return f"sha256:{digest.hexdigest()}"


def write_digest(path: str | os.PathLike, digest: str) -> Path:
    """Write ``digest`` (one line) to ``path`` atomically."""
    return write_atomic(path, lambda tmp: Path(tmp).write_text(digest + "\n"))


def load_dataset(path: str | os.PathLike, fix: str | None = None) -> Dataset:
    """Read and validate a dataset file written by :func:`save_dataset` (or by a user in
    this format: source ``npz``, where ``fix`` replaces the hint to rerun prepare_dataset).

    Raises :class:`DatasetError` naming the file and the problem (missing, not an npz,
    truncated, missing or unknown keys, wrong dtype or shape, not a hierarchy).
    """
    path = Path(path)
    redo = fix or "delete it and rerun the prepare_dataset rule"
    if not path.is_file():
        raise DatasetError(f"dataset file {path} does not exist; "
                           f"{fix or 'run the prepare_dataset rule to make it'}")
    try:
        with open(path, "rb") as f:  # our handle: closed even when np.load fails half-way
            npz = np.load(f, allow_pickle=False)
            if not isinstance(npz, np.lib.npyio.NpzFile):
                raise DatasetError(f"{path} is a single .npy array, not an .npz dataset file; {redo}")
            with npz:
                arrays = {key: npz[key] for key in npz.files}
    except DatasetError:
        raise
    except (OSError, ValueError, EOFError, zipfile.BadZipFile, zlib.error) as e:
        raise DatasetError(f"{path} is not a readable .npz dataset file ({e}); {redo}") from e
    missing = [k for k in REQUIRED_KEYS if k not in arrays]
    unknown = sorted(set(arrays) - set(REQUIRED_KEYS) - set(HIERARCHY_KEYS))
    if missing or unknown:
        raise DatasetError(f"{path}: missing keys {missing}, unknown keys {unknown}; {redo}")
    try:
        return Dataset(**{k: arrays.get(k) for k in REQUIRED_KEYS + HIERARCHY_KEYS})
    except DatasetError as e:
        raise DatasetError(f"{path}: {e}; {redo}") from None


def stratified_indices(
    labels: np.ndarray, per_class: int | None, seed: int, names: Sequence[str] | None = None
) -> np.ndarray:
    """Sorted int64 indices of ``per_class`` samples of every class (all when None).

    Classes are ``0 .. len(names) - 1`` (or ``0 .. max(labels)``). Seeded: the same
    labels, ``per_class`` and ``seed`` give the same indices, and the subsets are nested
    (the ``n`` samples chosen for ``per_class=n`` are among those for any larger value),
    because each class is shuffled by one permutation and its first ``per_class`` taken.
    A class with fewer than ``per_class`` samples is an error, not a silently smaller
    class: the per-class statistics of the measures (c1, c3: docs/measures.md) assume the
    class sizes the configuration asked for.
    """
    labels = np.asarray(labels)
    if per_class is None:
        return np.arange(len(labels), dtype=np.int64)
    if isinstance(per_class, bool) or not isinstance(per_class, (int, np.integer)) or per_class < 1:
        raise ValueError(f"per_class must be a positive integer or None, not {per_class!r}")
    if isinstance(seed, bool) or not isinstance(seed, (int, np.integer)):
        raise ValueError(f"seed must be an integer, not {seed!r}")
    num_classes = len(names) if names is not None else int(labels.max()) + 1
    rng = np.random.default_rng(seed)
    chosen = []
    for c in range(num_classes):
        members = np.flatnonzero(labels == c)
        if len(members) < per_class:
            name = names[c] if names is not None else c
            smallest = np.bincount(labels, minlength=num_classes).min()
            raise DatasetError(
                f"class {name!r} has {len(members)} samples, fewer than the {per_class} per class "
                f"asked for; ask for at most {smallest} (the smallest class)"
            )
        chosen.append(rng.permutation(members)[:per_class])
    return np.sort(np.concatenate(chosen)).astype(np.int64)


def training_indices(dataset: Dataset, per_class: int | None, seed: int) -> np.ndarray:
    """Sorted int64 indices into ``x_train``: ``per_class`` samples of each fine class.

    Training, extraction and sharpness call this with the study's ``train_per_class`` and
    ``data_seed`` (docs/stages.md), so all three see the same training set. Stratified by
    fine class (also when a model trains on superclasses, so subclasses stay balanced).
    """
    try:
        return stratified_indices(dataset.y_train, per_class, seed, dataset.fine_names)
    except DatasetError as e:
        raise DatasetError(f"training set: {e} (training.train_per_class in the config)") from None
