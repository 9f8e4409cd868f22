"""c1-c4 bit for bit: the measures rule's rows on a fixed store, pinned to the values the
code computed before the measures moved onto the registry (tests/golden/measures_pinned.csv,
written once by ``python tests/test_measures_pinned.py``; never regenerate it to make this
test pass: a difference means the paper's measures changed)."""

import sys
from pathlib import Path

import numpy as np
import pandas as pd

from intraclass.activations import StoreWriter
from intraclass.measures.table import measures_table

GOLDEN = Path(__file__).resolve().parent / "golden" / "measures_pinned.csv"
PAPER = ("c1", "c2", "c3", "c4")
# the default study's measures settings (config/config.yaml)
SETTINGS = {"k": {"c1": 30, "c2": 1, "c3": 30, "c4": 1}, "k_sweep": {"c1": 60, "c3": 180},
            "layer_k": 5, "c4_quantile": 0.75}
WIDTHS = (8, 16, 16, 32, 48, 64)


def write_fixed_store(path, seed: int, coarse: bool = True) -> None:
    """3 superclasses x 3 subclasses x 20 samples; each layer a subclass signal on some
    neurons plus noise, some dead neurons; float16 like the default study's stores."""
    rng = np.random.default_rng(seed)
    sub = np.repeat(np.arange(9), 20)
    layers = []
    for width in WIDTHS:
        centers = rng.normal(scale=1.5, size=(9, width)) * (rng.random(width) < 0.5)
        x = centers[sub] + rng.normal(size=(len(sub), width)) - 0.3
        x[:, : width // 8] = -np.abs(x[:, : width // 8]) - 0.1  # dead neurons
        layers.append(x.astype(np.float16))
    names = [f"block{i}.bn" for i in range(len(WIDTHS))]
    with StoreWriter(path, list(zip(names, WIDTHS)), len(sub), fine=sub, coarse=sub // 3 if coarse else None,
                     dtype="float16", compressor="none") as writer:
        writer.append(layers)
        writer.close()


def pinned_table(directory: Path) -> pd.DataFrame:
    """Tidy rows of two coarse-label checkpoints and one fine-label model."""
    write_fixed_store(directory / "final.zarr", 0)
    write_fixed_store(directory / "epoch1.zarr", 1)
    coarse = measures_table([directory / "final.zarr", directory / "epoch1.zarr"], ["final", "epoch1"],
                            "coarse", SETTINGS)
    coarse.insert(0, "labels", "coarse")
    fine = measures_table([directory / "final.zarr"], ["final"], "fine", SETTINGS)
    fine.insert(0, "labels", "fine")
    return pd.concat([coarse, fine], ignore_index=True)


def test_paper_measures_unchanged(tmp_path):
    now = pinned_table(tmp_path)
    now = now[now["measure"].isin(PAPER)].reset_index(drop=True)
    golden = pd.read_csv(GOLDEN, dtype={"k": "Int64", "layer": "Int64", "subclass": "Int64", "neuron": "Int64"})
    assert len(golden) > 500 and set(golden["measure"]) == set(PAPER)
    # same rows in the same order, every value bit for bit (written with 17 digits)
    pd.testing.assert_frame_equal(now.drop(columns="value"), golden.drop(columns="value"), check_dtype=False)
    assert np.array_equal(now["value"].to_numpy(), golden["value"].to_numpy(), equal_nan=True)


if __name__ == "__main__":  # records the golden file (done once, before the registry move)
    import tempfile

    with tempfile.TemporaryDirectory() as tmp:
        table = pinned_table(Path(tmp))
    table[table["measure"].isin(PAPER)].to_csv(GOLDEN, index=False, float_format="%.17g")
    print(f"wrote {GOLDEN} ({len(table)} rows)", file=sys.stderr)
