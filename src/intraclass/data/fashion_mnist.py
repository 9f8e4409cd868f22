"""Fashion-MNIST with a superclass hierarchy, from idx files or the bundled subset.

Hierarchy (resources/README.md): tops {T-shirt/top, Pullover, Coat, Shirt},
footwear {Sandal, Sneaker, Ankle boot}, other {Trouser, Dress, Bag}.

Sources:
- ``torchvision``: torchvision's layout ``root/FashionMNIST/raw/*.gz``, each file
  md5-checked against torchvision's sums, downloaded when missing and allowed.
- ``local``: a directory with the four idx files, gzipped or not (default
  ``/usr/share/datasets/fashion-mnist``, Debian's package ``dataset-fashion-mnist``,
  whose files are recompressed, so their md5 differs from torchvision's: they are checked
  for structure and the full dataset's sizes instead).
- ``bundled``: ``resources/fashion_mnist_small.npz``, a seeded stratified subset made by
  ``tools/make_bundled_subset.py``; its sha256 is recorded here and checked.
"""

from __future__ import annotations

import gzip
import logging
import zlib
from pathlib import Path

import numpy as np

from intraclass.data.files import download as download_file
from intraclass.data.files import file_digest
from intraclass.data.format import Dataset, DatasetError, load_dataset

log = logging.getLogger(__name__)

FINE_NAMES = ("T-shirt/top", "Trouser", "Pullover", "Dress", "Coat",
              "Sandal", "Shirt", "Sneaker", "Bag", "Ankle boot")  # label order of the idx files
COARSE_NAMES = ("tops", "footwear", "other")
FINE_TO_COARSE = np.array([0, 2, 0, 2, 0, 1, 0, 1, 2, 1], dtype=np.int64)  # index: fine label

IDX_FILES = {  # role -> file name without .gz
    "train_images": "train-images-idx3-ubyte",
    "train_labels": "train-labels-idx1-ubyte",
    "test_images": "t10k-images-idx3-ubyte",
    "test_labels": "t10k-labels-idx1-ubyte",
}
FULL_SIZES = (60000, 10000)  # train, test images of the full dataset
DEBIAN_DIR = Path("/usr/share/datasets/fashion-mnist")
TORCHVISION_FOLDER = Path("FashionMNIST") / "raw"

BUNDLED_NAME = "fashion_mnist_small.npz"
BUNDLED_SHA256 = "cc12c240e1a3394542208485555585a96210bc00962f3b638e7f427f7973a95c"
# The repository's resources/ (src/intraclass/data/ -> repository root), used when the
# config leaves `root` unset; a non-editable install must set `root` to that directory.
BUNDLED_DIR = Path(__file__).resolve().parents[3] / "resources"

_IDX_UBYTE = 0x08  # idx type code of unsigned bytes, the only one these files use


def read_idx(path: str | Path) -> np.ndarray:
    """Parse one idx file (gzipped when the name ends in .gz) into a uint8 array.

    Format: two zero bytes, a type code (0x08 = ubyte), the number of dimensions d, then
    d big-endian uint32 sizes, then the data in row-major order.
    """
    path = Path(path)
    try:
        if path.suffix == ".gz":
            with gzip.open(path, "rb") as f:
                raw = f.read()
        else:
            raw = path.read_bytes()
    except (OSError, EOFError, zlib.error) as e:  # gzip.BadGzipFile is an OSError
        raise DatasetError(f"{path} cannot be read ({e}): truncated or corrupt; replace it") from e
    if len(raw) < 4 or raw[0] != 0 or raw[1] != 0:
        raise DatasetError(f"{path} is not an idx file (bad magic number {raw[:4].hex()})")
    if raw[2] != _IDX_UBYTE:
        raise DatasetError(f"{path}: idx type code 0x{raw[2]:02x} is not ubyte (0x08)")
    ndim = raw[3]
    header = 4 + 4 * ndim
    if len(raw) < header:
        raise DatasetError(f"{path} is truncated inside its header")
    shape = tuple(int(s) for s in np.frombuffer(raw, dtype=">u4", count=ndim, offset=4))
    expected = int(np.prod(shape, dtype=np.int64))
    if len(raw) - header != expected:
        raise DatasetError(
            f"{path}: header says shape {shape} ({expected} bytes) but the file holds "
            f"{len(raw) - header} bytes of data: truncated or corrupt; replace it"
        )
    return np.frombuffer(raw, dtype=np.uint8, offset=header).reshape(shape)


def read_idx_files(paths: dict[str, Path], sizes: tuple[int, int] | None = None) -> Dataset:
    """Fashion-MNIST with its hierarchy from the four idx files (``paths``: role -> file).

    ``sizes`` (train, test), when given, is the number of images each split must have.
    """
    arrays = {role: read_idx(path) for role, path in paths.items()}
    splits = {}
    for split, expected in zip(("train", "test"), sizes or (None, None)):
        images, labels = arrays[f"{split}_images"], arrays[f"{split}_labels"]
        ipath, lpath = paths[f"{split}_images"], paths[f"{split}_labels"]
        if images.ndim != 3 or images.shape[1:] != (28, 28):
            raise DatasetError(f"{ipath}: expected images of shape (N, 28, 28), got {images.shape}")
        if labels.ndim != 1 or len(labels) != len(images):
            raise DatasetError(f"{lpath}: {labels.shape} labels for {len(images)} images in {ipath}")
        if expected is not None and len(images) != expected:
            raise DatasetError(f"{ipath}: {len(images)} images, the full dataset has {expected}")
        if labels.max() >= len(FINE_NAMES):
            raise DatasetError(f"{lpath}: label {labels.max()} outside 0..{len(FINE_NAMES) - 1}")
        y = labels.astype(np.int64)
        splits[split] = (images[..., None], y, FINE_TO_COARSE[y])  # NHWC with C = 1
    return Dataset(
        x_train=splits["train"][0], y_train=splits["train"][1], coarse_train=splits["train"][2],
        x_test=splits["test"][0], y_test=splits["test"][1], coarse_test=splits["test"][2],
        fine_names=list(FINE_NAMES), coarse_names=list(COARSE_NAMES),
    )


def read_local(root: str | Path | None = None) -> Dataset:
    """The full Fashion-MNIST from a directory of idx files (gzipped or not)."""
    root = Path(root) if root is not None else DEBIAN_DIR
    paths, missing = {}, []
    for role, name in IDX_FILES.items():
        found = [p for p in (root / f"{name}.gz", root / name) if p.is_file()]
        if found:
            paths[role] = found[0]
        else:
            missing.append(f"{name}(.gz)")
    if missing:
        raise DatasetError(
            f"Fashion-MNIST idx files not found in {root}: missing {', '.join(missing)}. "
            f"Install Debian's package dataset-fashion-mnist (files in {DEBIAN_DIR}), set root to "
            f"a directory holding the four idx files, or use source: torchvision with download: true"
        )
    log.info("reading Fashion-MNIST idx files from %s", root)
    return read_idx_files(paths, FULL_SIZES)


def read_torchvision(root: str | Path, download: bool = False) -> Dataset:
    """The full Fashion-MNIST in torchvision's layout, md5-checked, downloaded if allowed."""
    from torchvision.datasets import FashionMNIST  # imported late: reading needs no torch

    folder = Path(root) / TORCHVISION_FOLDER
    md5s = dict(FashionMNIST.resources)
    paths = {}
    for role, name in IDX_FILES.items():
        path = folder / f"{name}.gz"
        md5 = md5s[path.name]
        if path.is_file() and (got := file_digest(path)) != md5:
            raise DatasetError(
                f"{path} has md5 {got}, expected {md5}: truncated or corrupt. Delete it and rerun "
                f"with download: true, or replace it with a good copy"
            )
        if not path.is_file():
            if not download:
                raise DatasetError(
                    f"Fashion-MNIST file {path} is missing. Set download: true for this dataset "
                    f"in the config, or use source: local with a directory of the idx files"
                )
            errors = []
            for mirror in FashionMNIST.mirrors:  # first mirror that works
                try:
                    download_file(f"{mirror}{path.name}", path, md5)
                    break
                except DatasetError as e:
                    errors.append(str(e))
            else:
                raise DatasetError("; ".join(errors))
        paths[role] = path
    return read_idx_files(paths, FULL_SIZES)


def read_bundled(root: str | Path | None = None) -> Dataset:
    """The bundled stratified subset, after checking its sha256 against :data:`BUNDLED_SHA256`."""
    path = (Path(root) if root is not None else BUNDLED_DIR) / BUNDLED_NAME
    if not path.is_file():
        raise DatasetError(
            f"bundled dataset {path} is missing: restore it from the repository "
            f"(git checkout -- resources/{BUNDLED_NAME}), or set root to the directory holding it"
        )
    got = file_digest(path, "sha256")
    if got != BUNDLED_SHA256:
        raise DatasetError(
            f"{path} has sha256 {got}, but the recorded one is {BUNDLED_SHA256}: the file was changed "
            f"or truncated (or is a Git LFS pointer). Restore it (git checkout -- resources/"
            f"{BUNDLED_NAME}), or regenerate it with tools/make_bundled_subset.py and update BUNDLED_SHA256"
        )
    return load_dataset(path)
