"""CIFAR-10 and CIFAR-100 (fine and coarse labels) from the original python pickles.

torchvision's ``CIFAR100`` exposes only the fine labels; the pickles hold both
``fine_labels`` and ``coarse_labels`` and ``meta`` holds ``coarse_label_names``
(the CIFAR archives' own layout), so this module reads the pickles itself and uses torchvision
only for what it is good at: the URLs, the md5 sums and the download helper.

Layout under ``root`` (torchvision's, so an existing torchvision copy is reused):
``root/cifar-10-batches-py/`` or ``root/cifar-10-python.tar.gz`` (CIFAR-100:
``cifar-100-python/``, ``cifar-100-python.tar.gz``). Every file is md5-checked before it
is unpickled, so a truncated, corrupt or foreign file is never read.
"""

from __future__ import annotations

import functools
import logging
import pickle
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from intraclass.data.files import download as download_file
from intraclass.data.files import extract_folder, file_digest
from intraclass.data.format import Dataset, DatasetError

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class CifarSpec:
    """Where a CIFAR variant lives and how its files are checked and read."""

    title: str  # "CIFAR-10", for messages
    folder: str  # extracted folder under root
    archive: str  # archive file name under root
    url: str
    archive_md5: str
    train_files: tuple[tuple[str, str], ...]  # (file name, md5)
    test_files: tuple[tuple[str, str], ...]
    meta_file: tuple[str, str]
    label_key: str  # fine labels in each batch: "labels" | "fine_labels"
    names_key: str  # fine class names in meta: "label_names" | "fine_label_names"
    coarse_key: str | None = None  # "coarse_labels" (CIFAR-100)
    coarse_names_key: str | None = None  # "coarse_label_names" (CIFAR-100)

    @property
    def files(self) -> tuple[tuple[str, str], ...]:
        return self.train_files + self.test_files + (self.meta_file,)


def _spec_from_torchvision(cls, title: str, **keys) -> CifarSpec:
    return CifarSpec(
        title=title,
        folder=cls.base_folder,
        archive=cls.filename,
        url=cls.url,
        archive_md5=cls.tgz_md5,
        train_files=tuple((name, md5) for name, md5 in cls.train_list),
        test_files=tuple((name, md5) for name, md5 in cls.test_list),
        meta_file=(cls.meta["filename"], cls.meta["md5"]),
        **keys,
    )


@functools.cache
def cifar10_spec() -> CifarSpec:
    from torchvision.datasets import CIFAR10  # imported late: loading a dataset needs no torch

    return _spec_from_torchvision(CIFAR10, "CIFAR-10", label_key="labels", names_key="label_names")


@functools.cache
def cifar100_spec() -> CifarSpec:
    from torchvision.datasets import CIFAR100

    return _spec_from_torchvision(
        CIFAR100,
        "CIFAR-100",
        label_key="fine_labels",
        names_key="fine_label_names",
        coarse_key="coarse_labels",
        coarse_names_key="coarse_label_names",
    )


def _folder_problems(folder: Path, spec: CifarSpec) -> list[str]:
    """What is wrong with the extracted folder: missing files, md5 mismatches (empty: fine)."""
    problems = []
    for name, md5 in spec.files:
        path = folder / name
        if not path.is_file():
            problems.append(f"{path} is missing")
        elif (got := file_digest(path)) != md5:
            problems.append(f"{path} has md5 {got}, expected {md5}")
    return problems


def _fetch(root: Path, spec: CifarSpec, download: bool) -> Path:
    """Return the verified extracted folder, extracting or downloading the archive if needed."""
    folder = root / spec.folder
    problems = _folder_problems(folder, spec)
    if not problems:
        return folder
    archive = root / spec.archive
    if not archive.is_file():
        if not download:
            raise DatasetError(
                f"{spec.title} not found under {root}: {'; '.join(problems)}, and there is no "
                f"archive {archive}. Set download: true for this dataset in the config, or put "
                f"{spec.archive} (from {spec.url}) or its extracted folder {spec.folder}/ under {root}"
            )
        download_file(spec.url, archive, spec.archive_md5)
    elif (got := file_digest(archive)) != spec.archive_md5:
        raise DatasetError(
            f"{archive} has md5 {got}, expected {spec.archive_md5}: the archive is truncated or "
            f"corrupt. Delete it and rerun with download: true, or replace it with a good copy "
            f"of {spec.url}"
        )
    log.info("%s: %s", spec.title, "; ".join(problems))
    extract_folder(archive, spec.folder, root)
    problems = _folder_problems(folder, spec)
    if problems:
        raise DatasetError(
            f"{archive} passed its md5 check but its contents do not: {'; '.join(problems)}"
        )
    return folder


def _unpickle(path: Path) -> dict:
    # The files are md5-verified against torchvision's sums before this point.
    try:
        with open(path, "rb") as f:
            entry = pickle.load(f, encoding="latin1")
    except Exception as e:  # unpickling errors come in many types
        raise DatasetError(f"{path} is not a readable CIFAR pickle ({e})") from e
    if not isinstance(entry, dict):
        raise DatasetError(f"{path} holds a {type(entry).__name__}, not the dict of a CIFAR batch")
    return {k.decode() if isinstance(k, bytes) else k: v for k, v in entry.items()}


def _get(entry: dict, key: str, path: Path):
    if key not in entry:
        raise DatasetError(f"{path} has no {key!r} entry (keys: {sorted(entry)})")
    return entry[key]


def _read_batches(folder: Path, files, spec: CifarSpec):
    """Images (N, 32, 32, 3) uint8, fine labels and coarse labels (or None) of some batches."""
    images, fine, coarse = [], [], []
    for name, _ in files:
        path = folder / name
        entry = _unpickle(path)
        data = _get(entry, "data", path)
        if not (isinstance(data, np.ndarray) and data.dtype == np.uint8 and data.ndim == 2
                and data.shape[1] == 3 * 32 * 32):
            raise DatasetError(
                f"{path}: 'data' must be a uint8 array of shape (N, 3072), got "
                f"{getattr(data, 'dtype', type(data).__name__)} {getattr(data, 'shape', '')}"
            )
        # Rows are 1024 red, then 1024 green, then 1024 blue values in row-major order.
        images.append(data.reshape(-1, 3, 32, 32).transpose(0, 2, 3, 1))
        keys = [spec.label_key] + ([spec.coarse_key] if spec.coarse_key else [])
        for key, out in zip(keys, (fine, coarse)):
            labels = np.asarray(_get(entry, key, path), dtype=np.int64)
            if labels.shape != (len(data),):
                raise DatasetError(f"{path}: {key!r} has shape {labels.shape}, expected ({len(data)},)")
            out.append(labels)
    x = np.ascontiguousarray(np.concatenate(images))
    return x, np.concatenate(fine), (np.concatenate(coarse) if coarse else None)


def _names(meta: dict, key: str, path: Path) -> list[str]:
    names = _get(meta, key, path)
    return [n.decode() if isinstance(n, bytes) else str(n) for n in names]


def read_cifar(root, spec: CifarSpec, download: bool = False) -> Dataset:
    """The CIFAR dataset of ``spec`` under ``root`` (downloaded first when allowed)."""
    root = Path(root)
    folder = _fetch(root, spec, download)
    x_train, y_train, c_train = _read_batches(folder, spec.train_files, spec)
    x_test, y_test, c_test = _read_batches(folder, spec.test_files, spec)
    meta_path = folder / spec.meta_file[0]
    meta = _unpickle(meta_path)
    coarse_names = _names(meta, spec.coarse_names_key, meta_path) if spec.coarse_names_key else None
    try:
        return Dataset(
            x_train=x_train,
            x_test=x_test,
            y_train=y_train,
            y_test=y_test,
            fine_names=_names(meta, spec.names_key, meta_path),
            coarse_train=c_train,
            coarse_test=c_test,
            coarse_names=coarse_names,
        )
    except DatasetError as e:
        raise DatasetError(f"{spec.title} in {folder}: {e}") from None
