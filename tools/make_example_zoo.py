"""Make a small model zoo "trained elsewhere" for the README's example (docs/zoo.md).

Trains a few tiny CNNs (the builder ``intraclass.zoo_import:example_cnn``) on the bundled
Fashion-MNIST subset with a plain PyTorch loop that is not this project's training, and
writes what a zoo from another codebase looks like:

    <out>/models/<id>.pt        the final weights: a bare state_dict (torch.save)
    <out>/models/<id>.init.pt   the initial weights (for layer rotation)
    <out>/models.csv            model, checkpoint, init, lr, width, seed, test_acc

The models see pixels scaled to [0, 1] (no standardization), which config/example_zoo.yaml
declares as zoo.normalization (mean 0, std 1). Grid: lr x width x seed (default 2 x 2 x 2
= 8 models, about half a minute on one core). Run from the repository root:

    .venv/bin/python tools/make_example_zoo.py            # -> results/zoos/example
"""

from __future__ import annotations

import argparse
import itertools
from pathlib import Path

import numpy as np
import pandas as pd
import torch
from torch import nn

from intraclass.data import load_dataset, training_indices
from intraclass.zoo_import import example_cnn

REPO = Path(__file__).resolve().parents[1]
DATASET = REPO / "resources" / "fashion_mnist_small.npz"


def as_tensors(x: np.ndarray, y: np.ndarray) -> tuple[torch.Tensor, torch.Tensor]:
    """uint8 (N, H, W, C) -> float (N, C, H, W) in [0, 1]; labels int64."""
    images = torch.from_numpy(x).permute(0, 3, 1, 2).float() / 255.0
    return images, torch.from_numpy(np.asarray(y, dtype=np.int64))


def train_one(model: nn.Module, x: torch.Tensor, y: torch.Tensor, lr: float, epochs: int,
              batch: int, seed: int) -> None:
    """Plain SGD (momentum 0.9) with cross-entropy: the zoo's own training."""
    generator = torch.Generator().manual_seed(seed)
    optimizer = torch.optim.SGD(model.parameters(), lr=lr, momentum=0.9)
    model.train()
    for _ in range(epochs):
        order = torch.randperm(len(x), generator=generator)
        for start in range(0, len(x), batch):
            index = order[start:start + batch]
            optimizer.zero_grad()
            nn.functional.cross_entropy(model(x[index]), y[index]).backward()
            optimizer.step()


@torch.no_grad()
def accuracy(model: nn.Module, x: torch.Tensor, y: torch.Tensor) -> float:
    model.eval()
    return float((model(x).argmax(1) == y).float().mean())


def make_zoo(out: Path, lrs=(0.02, 0.1), widths=(0.5, 1.0), seeds=(0, 1), labels: str = "coarse",
             per_class: int = 100, epochs: int = 3, batch: int = 50) -> pd.DataFrame:
    """Train the grid ``lrs x widths x seeds`` and write the zoo under ``out``; returns the table."""
    dataset = load_dataset(DATASET)
    index = training_indices(dataset, per_class, 0)
    x_train, y_train = as_tensors(dataset.x_train[index], dataset.labels("train", labels)[index])
    x_test, y_test = as_tensors(dataset.x_test, dataset.labels("test", labels))
    classes = int(max(y_train.max(), y_test.max())) + 1
    (out / "models").mkdir(parents=True, exist_ok=True)
    rows = []
    for lr, width, seed in itertools.product(lrs, widths, seeds):
        model_id = f"lr{lr:g}-w{width:g}-s{seed}"
        torch.manual_seed(seed)
        model = example_cnn(classes, x_train.shape[1], {"width": width})
        torch.save(model.state_dict(), out / "models" / f"{model_id}.init.pt")
        train_one(model, x_train, y_train, lr, epochs, batch, seed)
        torch.save(model.state_dict(), out / "models" / f"{model_id}.pt")
        rows.append({"model": model_id, "checkpoint": f"{model_id}.pt", "init": f"{model_id}.init.pt",
                     "lr": lr, "width": width, "seed": seed, "test_acc": accuracy(model, x_test, y_test)})
        print(f"{model_id}: test accuracy {rows[-1]['test_acc']:.3f}")
    table = pd.DataFrame(rows)
    table.to_csv(out / "models.csv", index=False)
    return table


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--out", type=Path, default=Path("results/zoos/example"),
                        help="zoo directory (default: results/zoos/example)")
    parser.add_argument("--epochs", type=int, default=3)
    args = parser.parse_args()
    torch.set_num_threads(1)
    make_zoo(args.out, epochs=args.epochs)
    print(f"wrote {args.out}/models.csv and {args.out}/models/")


if __name__ == "__main__":
    main()
