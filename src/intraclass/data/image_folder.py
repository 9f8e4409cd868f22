"""A dataset from a folder of images, one subfolder per fine class (source ``image_folder``).

Layouts (docs/datasets.md):

- ``root/train/<class>/...`` and ``root/test/<class>/...``: the splits as given;
- ``root/<class>/...``: one pool per class, split by a seeded draw of ``test_fraction`` of
  each class's images into the test set (at least one image on each side).

Class folders are sorted by name (as torchvision's ``ImageFolder``), which gives the fine
labels 0, 1, ...; images are found at any depth under their class folder and read in
sorted path order. Hidden files and folders (name starting with ``.``) and files whose
suffix is not an image suffix (:data:`IMAGE_SUFFIXES`) are skipped.

Images (read with Pillow) become uint8 NHWC arrays. Every image must have the same width
and height (mixed sizes are an error naming them: resize beforehand, so that the choice of
resampling stays yours). Channels: ``channels`` when set (1: grey levels, colour converted
by Pillow's ITU-R 601-2 luma; 3: RGB, grey replicated), otherwise 1 when every image is
grey and 3 as soon as one is in colour (grey images then replicated to RGB, as
torchvision's loader does). An alpha channel is dropped only when fully opaque; a
transparent pixel is an error. Images with more than 8 bits per channel are an error.
"""

from __future__ import annotations

import logging
from collections import Counter
from pathlib import Path

import numpy as np

from intraclass.data.format import Dataset, DatasetError
from intraclass.data.hierarchy import Hierarchy, match_classes

log = logging.getLogger(__name__)

IMAGE_SUFFIXES = frozenset({".png", ".jpg", ".jpeg", ".bmp", ".gif", ".ppm", ".pgm", ".pbm",
                            ".tif", ".tiff", ".webp"})
GREY_MODES = frozenset({"1", "L", "LA"})
COLOUR_MODES = frozenset({"RGB", "RGBA", "P", "PA", "CMYK", "YCbCr", "LAB", "HSV", "RGBX"})
DEFAULT_TEST_FRACTION = 0.2


def _visible(path: Path, base: Path) -> bool:
    return not any(part.startswith(".") for part in path.relative_to(base).parts)


def class_files(folder: Path) -> dict[str, list[Path]]:
    """Class name -> its image files (sorted), for the class subfolders of ``folder``."""
    classes = sorted(p.name for p in folder.iterdir() if p.is_dir() and not p.name.startswith("."))
    if not classes:
        raise DatasetError(f"image folder {folder} has no class subfolders (expected {folder}/<class>/<images>)")
    found = {}
    for name in classes:
        base = folder / name
        found[name] = sorted(p for p in base.rglob("*") if p.is_file() and _visible(p, base)
                             and p.suffix.lower() in IMAGE_SUFFIXES)
    return found


def _split_layout(root: Path) -> bool:
    """Whether ``root`` holds train/ and test/ subtrees (True) or class folders (False)."""
    train, test = (root / "train").is_dir(), (root / "test").is_dir()
    if train != test:
        raise DatasetError(f"image folder {root} has a {'train' if train else 'test'}/ subfolder but no "
                           f"{'test' if train else 'train'}/: give both, or put the class folders "
                           f"directly under {root} and set test_fraction")
    return train


def _header(path: Path) -> tuple[tuple[int, int], str]:
    """(width, height) and Pillow mode, read from the file's header only."""
    from PIL import Image, UnidentifiedImageError

    try:
        with Image.open(path) as im:
            return im.size, im.mode
    except (OSError, UnidentifiedImageError) as e:
        raise DatasetError(f"{path} is not a readable image ({e})") from e


def _check_headers(paths: list[Path], root: Path, channels: int | None) -> tuple[int, int, int]:
    """(H, W, C) shared by all images; mixed sizes or unsupported modes are errors."""
    headers = [_header(p) for p in paths]
    sizes = Counter(size for size, _ in headers)
    if len(sizes) > 1:
        examples = {size: next(str(p) for p, (s, _) in zip(paths, headers) if s == size) for size in sizes}
        listing = "; ".join(f"{w}x{h} (width x height): {n} image(s), e.g. {examples[(w, h)]}"
                            for (w, h), n in sizes.most_common(5))
        raise DatasetError(f"image folder {root}: images of {len(sizes)} different sizes ({listing}); every "
                           f"image must have the same size: resize them beforehand")
    bad = [(p, m) for p, (_, m) in zip(paths, headers) if m not in GREY_MODES | COLOUR_MODES]
    if bad:
        raise DatasetError(f"image folder {root}: {len(bad)} image(s) in a mode that is not 8 bits per channel, "
                           f"e.g. {bad[0][0]} (mode {bad[0][1]}); convert them to 8-bit grey or RGB")
    if channels is None:
        channels = 1 if all(m in GREY_MODES for _, m in headers) else 3
    (w, h), = sizes
    return h, w, channels


def _pixels(path: Path, channels: int) -> np.ndarray:
    """(H, W, channels) uint8 pixels of one image, alpha dropped only when fully opaque."""
    from PIL import Image

    with Image.open(path) as im:
        im.load()
        has_alpha = im.mode in ("LA", "RGBA", "PA") or (im.mode == "P" and "transparency" in im.info)
        if has_alpha:
            alpha = np.asarray(im.convert("RGBA"))[..., 3]
            if alpha.min() < 255:
                raise DatasetError(f"{path} has transparent pixels (alpha < 255); flatten it onto a "
                                   f"background first")
        if im.mode not in ("L", "RGB"):  # to 8-bit grey or RGB first (palette, CMYK, 1-bit, alpha)
            im = im.convert("L" if im.mode in GREY_MODES else "RGB")
        target = "L" if channels == 1 else "RGB"
        array = np.asarray(im.convert(target) if im.mode != target else im, dtype=np.uint8)
    return array.reshape(array.shape[0], array.shape[1], channels)


def _seeded_split(counts: list[int], test_fraction: float, seed: int, root: Path,
                  classes: list[str]) -> tuple[np.ndarray, np.ndarray]:
    """Train and test indices into the images in class order: per class, a seeded
    permutation's first round(test_fraction * n) images (at least 1, at most n - 1) are test."""
    rng = np.random.default_rng(seed)
    train, test, start = [], [], 0
    for name, n in zip(classes, counts):
        if n < 2:
            raise DatasetError(f"image folder {root}: class {name!r} has {n} image(s); a train/test split "
                               f"needs at least 2 per class")
        n_test = min(max(round(test_fraction * n), 1), n - 1)
        order = start + rng.permutation(n)
        test.append(order[:n_test])
        train.append(order[n_test:])
        start += n
    return np.sort(np.concatenate(train)), np.sort(np.concatenate(test))


def read_image_folder(root, hierarchy: Hierarchy | None = None, drop_unlisted: bool = False,
                      test_fraction: float | None = None, seed: int = 0, channels: int | None = None) -> Dataset:
    """The dataset in the image folder ``root`` (layouts in the module docstring), with the
    coarse labels of ``hierarchy`` (matched to the class folder names) when given."""
    root = Path(root)
    if not root.is_dir():
        raise DatasetError(f"image folder {root} does not exist or is not a directory")
    split = _split_layout(root)
    if split and test_fraction is not None:
        raise DatasetError(f"image folder {root} has train/ and test/ subfolders: test_fraction means "
                           f"nothing there (remove it)")
    parts = {s: class_files(root / s) for s in ("train", "test")} if split else {"all": class_files(root)}
    first = next(iter(parts.values()))
    if split and set(parts["test"]) != set(parts["train"]):
        only_train = sorted(set(parts["train"]) - set(parts["test"]))
        only_test = sorted(set(parts["test"]) - set(parts["train"]))
        raise DatasetError(f"image folder {root}: train/ and test/ must have the same class folders; only in "
                           f"train/: {only_train}, only in test/: {only_test}")
    what = f"image folder {root}"
    classes = list(first) if hierarchy is None else match_classes(hierarchy, list(first), drop_unlisted, what)
    for part, found in parts.items():
        empty = [c for c in classes if not found[c]]
        if empty:
            where = root / part if split else root
            raise DatasetError(f"image folder {where}: class folder(s) {empty} hold no image "
                               f"(suffixes {sorted(IMAGE_SUFFIXES)})")
    paths = [p for found in parts.values() for c in classes for p in found[c]]
    h, w, c = _check_headers(paths, root, channels)
    log.info("%s: %d images of %dx%dx%d in %d classes", what, len(paths), h, w, c, len(classes))
    x = np.empty((len(paths), h, w, c), dtype=np.uint8)
    for i, path in enumerate(paths):
        x[i] = _pixels(path, c)
    labels = np.concatenate([np.full(len(found[name]), k, dtype=np.int64)
                             for found in parts.values() for k, name in enumerate(classes)])
    if split:
        n_train = sum(len(parts["train"][name]) for name in classes)
        train, test = np.arange(n_train), np.arange(n_train, len(paths))
    else:
        fraction = DEFAULT_TEST_FRACTION if test_fraction is None else test_fraction
        train, test = _seeded_split([len(first[name]) for name in classes], fraction, seed, root, classes)
    coarse = None
    if hierarchy is not None:
        sup = hierarchy.superclass_of()
        coarse = np.array([sup[name] for name in classes], dtype=np.int64)[labels]
    return Dataset(
        x_train=x[train], x_test=x[test], y_train=labels[train], y_test=labels[test], fine_names=classes,
        coarse_train=None if coarse is None else coarse[train],
        coarse_test=None if coarse is None else coarse[test],
        coarse_names=None if hierarchy is None else hierarchy.superclasses,
    )
