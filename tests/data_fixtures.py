"""Small files in the original formats of the dataset sources, for tests/test_data.py."""

from __future__ import annotations

import dataclasses
import gzip
import pickle
import struct
import tarfile
from pathlib import Path

import numpy as np

from intraclass.data.cifar import CifarSpec
from intraclass.data.files import file_digest


def cifar_batch(rng, n: int, num_fine: int, coarse_of=None) -> dict:
    """A batch dict as in the CIFAR python pickles: data rows are R, G, B planes of 32x32."""
    fine = rng.integers(0, num_fine, n)
    fine[:num_fine] = np.arange(num_fine)  # every class present (n >= num_fine)
    batch = {
        "batch_label": "fixture batch",
        "data": rng.integers(0, 256, (n, 3072), dtype=np.uint8),
        "filenames": [f"img{i}.png" for i in range(n)],
    }
    if coarse_of is None:
        batch["labels"] = fine.tolist()
    else:
        batch["fine_labels"] = fine.tolist()
        batch["coarse_labels"] = [int(coarse_of[f]) for f in fine]
    return batch


def _dump(obj, path: Path) -> None:
    with open(path, "wb") as f:
        pickle.dump(obj, f, protocol=2)  # the originals are protocol-2 pickles


def write_cifar(root: Path, spec: CifarSpec, n: int = 12, seed: int = 0, archive: bool = True,
                batches: dict | None = None) -> CifarSpec:
    """Write ``spec``'s folder (and its tar.gz) under ``root`` with small random batches.

    CIFAR-100 fixtures (``spec.coarse_key`` set) have 10 fine classes in 2 superclasses
    (fine f in superclass f % 2). ``batches`` overrides the content of named files.
    Returns ``spec`` with the md5 sums of the files written, as a test stand-in for
    torchvision's sums.
    """
    rng = np.random.default_rng(seed)
    folder = root / spec.folder
    folder.mkdir(parents=True, exist_ok=True)
    hierarchical = spec.coarse_key is not None
    coarse_of = np.arange(10) % 2 if hierarchical else None
    for name, _ in spec.train_files + spec.test_files:
        _dump((batches or {}).get(name) or cifar_batch(rng, n, 10, coarse_of), folder / name)
    meta = {spec.names_key: [f"fine{i}" for i in range(10)]}
    if hierarchical:
        meta[spec.coarse_names_key] = ["even", "odd"]
    else:
        meta["num_cases_per_batch"] = n
    _dump(meta, folder / spec.meta_file[0])
    md5 = lambda name: file_digest(folder / name)  # noqa: E731
    archive_md5 = ""
    if archive:
        with tarfile.open(root / spec.archive, "w:gz") as tar:
            tar.add(folder, arcname=spec.folder)
        archive_md5 = file_digest(root / spec.archive)
    return dataclasses.replace(
        spec,
        archive_md5=archive_md5,
        train_files=tuple((name, md5(name)) for name, _ in spec.train_files),
        test_files=tuple((name, md5(name)) for name, _ in spec.test_files),
        meta_file=(spec.meta_file[0], md5(spec.meta_file[0])),
    )


def idx_bytes(array: np.ndarray) -> bytes:
    """An idx file: 0, 0, type 0x08 (ubyte), ndim, big-endian uint32 sizes, data."""
    array = np.ascontiguousarray(array, dtype=np.uint8)
    header = bytes([0, 0, 0x08, array.ndim]) + struct.pack(f">{array.ndim}I", *array.shape)
    return header + array.tobytes()


def write_fashion_idx(directory: Path, n_train: int = 30, n_test: int = 20, seed: int = 0,
                      gz: bool = True) -> dict[str, np.ndarray]:
    """The four Fashion-MNIST idx files with random images; returns the arrays written."""
    rng = np.random.default_rng(seed)
    directory.mkdir(parents=True, exist_ok=True)
    arrays = {}
    for split, n, stem in (("train", n_train, "train"), ("test", n_test, "t10k")):
        labels = rng.integers(0, 10, n).astype(np.uint8)
        labels[:10] = np.arange(10)
        arrays[f"{split}_images"] = rng.integers(0, 256, (n, 28, 28), dtype=np.uint8)
        arrays[f"{split}_labels"] = labels
        for kind, ndim in (("images", 3), ("labels", 1)):
            data = idx_bytes(arrays[f"{split}_{kind}"])
            name = f"{stem}-{kind}-idx{ndim}-ubyte"
            if gz:
                (directory / f"{name}.gz").write_bytes(gzip.compress(data))
            else:
                (directory / name).write_bytes(data)
    return arrays
