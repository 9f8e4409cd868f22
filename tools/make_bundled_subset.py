"""Make resources/fashion_mnist_small.npz, the bundled default dataset.

A seeded, stratified subset of Fashion-MNIST (600 training and 200 test images per
class by default) with the superclass hierarchy of intraclass.data.fashion_mnist,
in the dataset file format every stage reads. Run from the repository root:

    python tools/make_bundled_subset.py [--source /usr/share/datasets/fashion-mnist]

The source is a directory of the four idx files (Debian: apt-get install
dataset-fashion-mnist). The script prints the file's sha256: record it as
BUNDLED_SHA256 in src/intraclass/data/fashion_mnist.py. The output is byte-for-byte
reproducible (fixed zip timestamps) for the same zlib.
"""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np

from intraclass.data import save_dataset, stratified_indices
from intraclass.data.fashion_mnist import BUNDLED_DIR, BUNDLED_NAME, DEBIAN_DIR, read_local
from intraclass.data.files import file_digest


def make_subset(source: Path, train_per_class: int, test_per_class: int, seed: int):
    """The subset of the full dataset in ``source``: same seed for both splits."""
    full = read_local(source)
    train = stratified_indices(full.y_train, train_per_class, seed, full.fine_names)
    test = stratified_indices(full.y_test, test_per_class, seed, full.fine_names)
    return full.subset(train, test)


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--source", type=Path, default=DEBIAN_DIR, help="directory of the idx files")
    parser.add_argument("--out", type=Path, default=BUNDLED_DIR / BUNDLED_NAME)
    parser.add_argument("--train-per-class", type=int, default=600)
    parser.add_argument("--test-per-class", type=int, default=200)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args(argv)
    subset = make_subset(args.source, args.train_per_class, args.test_per_class, args.seed)
    save_dataset(subset, args.out)
    print(f"wrote {args.out} ({args.out.stat().st_size / 1e6:.2f} MB): {subset.summary()}")
    print(f"train images per class: {np.bincount(subset.y_train).tolist()}")
    print(f"sha256 {file_digest(args.out, 'sha256')}")


if __name__ == "__main__":
    main()
