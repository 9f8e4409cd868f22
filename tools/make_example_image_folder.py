"""Make the example image folder of README.md ("Your own dataset"): PNG files from the
bundled Fashion-MNIST subset (resources/), laid out as a user's own dataset would be.

    data/example_image_folder/
        train/<class>/<n>.png     60 images per class (default)
        test/<class>/<n>.png      20 images per class
        hierarchy.json            {"tops": ["Coat", ...], "footwear": [...], "other": [...]}

Class folders are the Fashion-MNIST class names with "/" replaced by "_" (a folder name
cannot hold one), so "T-shirt/top" becomes "T-shirt_top". The images are a seeded,
stratified draw; the same arguments always give the same files. Run from the repository
root (config/example_image_folder.yaml reads the default location):

    python tools/make_example_image_folder.py [--out data/example_image_folder]
"""

from __future__ import annotations

import argparse
import json
import shutil
import sys
import tempfile
from pathlib import Path

DEFAULT_OUT = Path("data") / "example_image_folder"


def folder_name(class_name: str) -> str:
    """A class name as a folder name: '/' is not allowed in one."""
    return class_name.replace("/", "_")


def make_example_folder(out: Path, train_per_class: int = 60, test_per_class: int = 20, seed: int = 0) -> Path:
    """Write the example folder to ``out`` (replacing an older one whole); returns ``out``."""
    from PIL import Image

    from intraclass.data import stratified_indices
    from intraclass.data.fashion_mnist import read_bundled
    from intraclass.data.hierarchy import PRESETS
    from intraclass.runtime import replace_dir

    data = read_bundled()
    out = Path(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{out.name}.tmp-", dir=out.parent))
    try:
        for split, per_class in (("train", train_per_class), ("test", test_per_class)):
            x, y = getattr(data, f"x_{split}"), data.labels(split)
            for i in stratified_indices(y, per_class, seed, data.fine_names):
                folder = tmp / split / folder_name(data.fine_names[y[i]])
                folder.mkdir(parents=True, exist_ok=True)
                Image.fromarray(x[i, :, :, 0]).save(folder / f"{i:05d}.png")
        groups = {s: [folder_name(f) for f in fines] for s, fines in PRESETS["fashion_mnist_three"].groups}
        (tmp / "hierarchy.json").write_text(json.dumps(groups, indent=2) + "\n")
        replace_dir(tmp, out)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return out


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=DEFAULT_OUT, help=f"output folder (default {DEFAULT_OUT})")
    parser.add_argument("--train-per-class", type=int, default=60)
    parser.add_argument("--test-per-class", type=int, default=20)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args(argv)
    out = make_example_folder(args.out, args.train_per_class, args.test_per_class, args.seed)
    n = sum(1 for _ in out.rglob("*.png"))
    print(f"wrote {n} images and {out / 'hierarchy.json'}")
    return 0


if __name__ == "__main__":
    sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "src"))  # the package of this checkout
    sys.exit(main())
