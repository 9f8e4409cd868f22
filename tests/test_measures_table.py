"""Rule measures end to end on small stores: activation stores -> tidy CSV, via the
package function and via workflow/scripts/measures.py with a stand-in ``snakemake``."""

import logging
import runpy
import sys
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pandas as pd
import pytest

from intraclass.activations import StoreWriter
from intraclass.measures import measure_stats
from intraclass.measures.table import CSV_COLUMNS, measures_table, write_measures_csv

SCRIPT = Path(__file__).resolve().parents[1] / "workflow" / "scripts" / "measures.py"
SETTINGS = {"k": {"c1": 3, "c2": 1, "c3": 4, "c4": 2, "bimodality": 4}, "k_sweep": {"c1": 5, "c3": 6},
            "layer_k": 2, "c4_quantile": 0.75}


def write_store(path, seed, coarse=True):
    rng = np.random.default_rng(seed)
    sub = np.repeat(np.arange(6), 12)
    layers = [rng.normal(size=(len(sub), d)).astype(np.float32) for d in (4, 6, 3)]
    names = ["block1.bn", "block2.bn", "block3.bn"]
    with StoreWriter(path, list(zip(names, (4, 6, 3))), len(sub), fine=sub + 10,
                     coarse=sub // 3 if coarse else None, dtype="float32", compressor="none") as w:
        w.append(layers)
        w.close()
    return layers, sub + 10, sub // 3


def test_table_of_two_checkpoints(tmp_path):
    layers, fine, coarse = write_store(tmp_path / "final.zarr", 0)
    write_store(tmp_path / "epoch1.zarr", 1)
    table = measures_table([tmp_path / "final.zarr", tmp_path / "epoch1.zarr"], ["final", "epoch1"],
                           "coarse", SETTINGS)
    assert list(table.columns) == CSV_COLUMNS
    assert set(table["checkpoint"]) == {"final", "epoch1"}
    final = table[(table.checkpoint == "final") & (table.scope == "total")].set_index("measure")["value"]
    expected = measure_stats(layers, fine, coarse, coarse)
    for measure in ("c1", "c2", "c3", "c4"):
        assert final[measure] == pytest.approx(expected.total(measure, SETTINGS["k"][measure]), rel=1e-6)
    threaded = measures_table([tmp_path / "final.zarr", tmp_path / "epoch1.zarr"], ["final", "epoch1"],
                              "coarse", SETTINGS, workers=2)  # the rule's threads: layers in parallel
    pd.testing.assert_frame_equal(threaded, table)


def test_fine_labels_skip_c1_c2_and_csv_roundtrips(tmp_path):
    layers, fine, _ = write_store(tmp_path / "final.zarr", 2)
    out = write_measures_csv([tmp_path / "final.zarr"], ["final"], "fine", SETTINGS, tmp_path / "m" / "x.csv")
    back = pd.read_csv(out)
    assert list(back.columns) == CSV_COLUMNS
    assert set(back["measure"]) == {"c3", "c4", "bimodality"}  # no hierarchy: c1, c2, clusterability, purity skipped
    total = back[back.scope == "total"].set_index("measure")["value"]
    assert total["c3"] == measure_stats(layers, labels=fine, measures=("c3",)).total("c3", 4)  # exact
    assert not list(out.parent.glob(".*partial*"))


def test_errors_leave_existing_csv(tmp_path):
    write_store(tmp_path / "flat.zarr", 3, coarse=False)
    out = tmp_path / "m.csv"
    out.write_text("old\n")
    with pytest.raises(ValueError, match="no coarse labels"):
        write_measures_csv([tmp_path / "flat.zarr"], ["final"], "coarse", SETTINGS, out)
    with pytest.raises(ValueError, match="labels must be one of"):
        write_measures_csv([tmp_path / "flat.zarr"], ["final"], "superclass", SETTINGS, out)
    with pytest.raises(ValueError, match="2 checkpoint names"):
        write_measures_csv([tmp_path / "flat.zarr"], ["final", "epoch1"], "fine", SETTINGS, out)
    with pytest.raises(FileNotFoundError):
        write_measures_csv([tmp_path / "missing.zarr"], ["final"], "fine", SETTINGS, out)
    assert out.read_text() == "old\n"


def test_rule_script(tmp_path):
    write_store(tmp_path / "final.zarr", 4)
    snakemake = SimpleNamespace(
        input=SimpleNamespace(stores=[str(tmp_path / "final.zarr")]),
        output=SimpleNamespace(csv=str(tmp_path / "out.csv"), status=str(tmp_path / "out.status.json")),
        params=SimpleNamespace(checkpoints=["final"], labels="coarse", measures=SETTINGS),
        log=[str(tmp_path / "log.txt")], threads=1)
    root, handlers, hook = logging.getLogger(), logging.getLogger().handlers[:], sys.excepthook
    try:
        runpy.run_path(str(SCRIPT), init_globals={"snakemake": snakemake})
    finally:  # the script configures process-wide logging: give pytest its own back
        for handler in root.handlers[:]:
            root.removeHandler(handler)
            handler.close()
        for handler in handlers:
            root.addHandler(handler)
        sys.excepthook = hook
    rows = pd.read_csv(tmp_path / "out.csv")
    assert set(rows["measure"]) == {"c1", "c2", "c3", "c4", "clusterability", "purity", "bimodality"}
    assert "wrote" in (tmp_path / "log.txt").read_text()
