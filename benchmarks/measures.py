"""Benchmark of intraclass.measures: fast statistics vs the plain references, and the
cost of every measure on a CIFAR-100-sized activation cache vs the cost of reading it.

    python benchmarks/measures.py                 # full size (a few minutes, ~4 GB RAM)
    python benchmarks/measures.py --scale 0.1     # quick look: 10% of the samples

Part 1 (issue 6): n = 2500 samples per superclass, 5 subclasses, one 512-wide layer:
speed-up of c2's silhouette and c4's spread ratio over the references (scikit-learn's
silhouette_samples, explicit n x n cosine-distance matrices); target 50x or more.
Part 2: 50,000 samples, 24 layers of 32/64/128/256 neurons (2,880: the ResNet of depth
x1.5), 100 fine / 20 coarse classes: time of c1-c4 + both k sweeps + layer-wise values
(everything the measures rule writes) vs the time to read that cache from a Zarr store
written by intraclass.activations (float16, zstd) and from .npy files; target 2x.
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from pathlib import Path


def parse_args():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--scale", type=float, default=1.0, help="fraction of the samples of both parts")
    p.add_argument("--threads", type=int, default=1, help="BLAS threads (the rule's default: 1)")
    p.add_argument("--skip-reference", action="store_true", help="part 1 without the slow references")
    p.add_argument("--skip-cache", action="store_true", help="part 1 only")
    p.add_argument("--tmp", default=None, help="directory for the temporary store")
    p.add_argument("--repeat", type=int, default=3, help="part 2: best of this many runs of each step")
    p.add_argument("--workers", type=int, default=1,
                   help="part 2: layers computed at once (the measures rule's threads; BLAS keeps --threads)")
    return p.parse_args()


args = parse_args()
for var in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ[var] = str(args.threads)  # before numpy is imported

import numpy as np  # noqa: E402

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "src"))
from intraclass.measures import (  # noqa: E402
    MeasureSettings,
    measure_stats,
    stats,
)
from intraclass.measures import reference as ref  # noqa: E402
from intraclass.measures.labels import hierarchy, partition  # noqa: E402

CPU = {}  # best CPU time of the last timed() call of each label (for shared machines)


def timed(fn, repeat=1, label=None):
    """(result, best wall time in seconds over ``repeat`` runs); the best CPU time of the
    process goes to CPU[label] (wall time on a machine shared with other jobs overstates
    the work; with one BLAS thread CPU time is the work itself)."""
    best, best_cpu, out = float("inf"), float("inf"), None
    for _ in range(repeat):
        start, start_cpu = time.perf_counter(), time.process_time()
        out = fn()
        best = min(best, time.perf_counter() - start)
        best_cpu = min(best_cpu, time.process_time() - start_cpu)
    if label:
        CPU[label] = best_cpu
    return out, best


def hierarchical_data(rng, n_super, n_sub, per_sub, widths, dtype=np.float32):
    """Layers where each subclass shifts a few neurons: structured, not pure noise."""
    sub = np.repeat(np.arange(n_super * n_sub), per_sub)
    fine, coarse = sub, sub // n_sub
    layers = []
    for d in widths:
        x = rng.standard_normal((len(sub), d), dtype=np.float32)
        shift = rng.standard_normal((n_super * n_sub, d), dtype=np.float32) * 0.5
        x += shift[sub]
        layers.append(x.astype(dtype))
    perm = rng.permutation(len(sub))
    return [x[perm] for x in layers], fine[perm], coarse[perm]


def part1(rng, scale, skip_reference):
    per_super = max(10, int(2500 * scale))
    n_super, n_sub, width = 2, 5, 512
    layers, fine, coarse = hierarchical_data(rng, n_super, n_sub, per_super // n_sub, [width])
    x = layers[0]
    n = len(fine)
    print(f"\n== Part 1: {n_super} superclasses x {per_super} samples ({n_sub} subclasses each), "
          f"one {width}-wide layer, {args.threads} thread(s)")
    # inside measure_stats the layer is sorted by class once, for all measures, and every
    # statistic reads it as stored (float32 here); "kernel" times the statistic on that
    # sorted layer, "end to end" includes the label checks and the sorting
    order = np.lexsort((fine, coarse))
    x_sorted = x[order]
    hier = hierarchy(fine[order], coarse[order], n)
    part = partition(coarse[order], n)
    sil, t_sil = timed(lambda: stats.subclass_silhouette(x_sorted, hier), repeat=5, label="c2")
    spr, t_spr = timed(lambda: stats.spread_ratio(x_sorted, part), repeat=5, label="c4")
    _, t_sil_e2e = timed(lambda: measure_stats([x], fine, coarse, measures=("c2",)), repeat=5, label="c2 e2e")
    _, t_spr_e2e = timed(lambda: measure_stats([x], labels=coarse, measures=("c4",)), repeat=5, label="c4 e2e")
    print(f"fast c2 silhouette per subclass: kernel {t_sil * 1e3:7.1f} ms, end to end {t_sil_e2e * 1e3:7.1f} ms")
    print(f"fast c4 spread ratio per class:  kernel {t_spr * 1e3:7.1f} ms, end to end {t_spr_e2e * 1e3:7.1f} ms")
    if skip_reference:
        return
    sil_ref, t_sil_ref = timed(lambda: ref.reference_silhouette([x], fine, coarse)[:, 0], repeat=2, label="c2 ref")
    spr_ref, t_spr_ref = timed(lambda: ref.reference_spread_ratio([x], coarse)[:, 0], repeat=2, label="c4 ref")
    for name, what, fast, slow, t_ref, t_fast, t_e2e in (
        ("c2", "sklearn silhouette_samples", sil, sil_ref, t_sil_ref, t_sil, t_sil_e2e),
        ("c4", "explicit n x n distances", spr, spr_ref, t_spr_ref, t_spr, t_spr_e2e),
    ):
        print(f"ref  {name} {what:27s} {t_ref * 1e3:8.1f} ms: speed-up {t_ref / t_fast:6.1f}x kernel, "
              f"{t_ref / t_e2e:6.1f}x end to end; CPU time: {CPU[name + ' ref'] / CPU[name]:6.1f}x, "
              f"{CPU[name + ' ref'] / CPU[name + ' e2e']:6.1f}x (max rel. difference "
              f"{np.max(np.abs(fast - slow) / np.abs(slow)):.1e})")


def part2(rng, scale, tmp):
    from intraclass.activations import StoreWriter, open_store

    n_super, n_sub = 20, 5
    per_sub = max(4, int(500 * scale))
    widths = [w for w in (32, 64, 128, 256) for _ in range(6)]
    names = [f"layer{i:02d}" for i in range(len(widths))]
    layers, fine, coarse = hierarchical_data(rng, n_super, n_sub, per_sub, widths, dtype=np.float16)
    n = len(fine)
    print(f"\n== Part 2: cache of {n} samples, {len(widths)} layers, {sum(widths)} neurons, "
          f"{n_super * n_sub} fine / {n_super} coarse classes, float16 "
          f"({sum(x.nbytes for x in layers) / 2**20:.0f} MiB), {args.threads} BLAS thread(s), "
          f"{args.workers} worker(s)")
    store_path = Path(tmp) / "cache.zarr"
    with StoreWriter(store_path, list(zip(names, widths)), n, fine=fine, coarse=coarse,
                     dtype="float16", compressor="zstd") as writer:
        for lo in range(0, n, 5000):
            writer.append([x[lo:lo + 5000] for x in layers])
        writer.close()
    npy = Path(tmp) / "npy"
    npy.mkdir()
    for name, x in zip(names, layers):
        np.save(npy / f"{name}.npy", x)

    def read_zarr():
        store = open_store(store_path)
        return [store.layers([name])[0] for name in store.layer_names]

    def read_npy():
        return [np.load(npy / f"{name}.npy").astype(np.float32) for name in names]

    repeat = args.repeat
    loaded, t_zarr = timed(read_zarr, repeat=repeat, label="zarr")
    _, t_npy = timed(read_npy, repeat=repeat, label="npy")
    settings = MeasureSettings(k={"c1": 30, "c2": 5, "c3": 30, "c4": 5},
                               k_sweep={"c1": 100, "c3": 500}, layer_k=5)
    phases = {}
    for m in ("c1", "c2", "c3", "c4"):
        _, phases[m] = timed(lambda m=m: measure_stats(loaded, fine, coarse, coarse, (m,), workers=args.workers),
                             repeat, label=m)
    everything, t_stats = timed(lambda: measure_stats(loaded, fine, coarse, coarse, workers=args.workers),
                                repeat, label="all")
    rows, t_rows = timed(lambda: everything.rows(settings), repeat, label="rows")

    def streamed():  # what the rule does: read a layer, reduce it, drop it
        store = open_store(store_path)
        layer_iter = (store.layers([name])[0] for name in store.layer_names)
        return measure_stats(layer_iter, store.fine, store.coarse, store.coarse,
                             workers=args.workers).rows(settings)

    _, t_stream = timed(streamed, repeat, label="stream")
    t_all, cpu_all = t_stats + t_rows, CPU["all"] + CPU["rows"]
    print(f"{'':54s} {'wall s':>8s} {'CPU s':>8s}")
    for text, wall, cpu in (
        ("read Zarr store (intraclass.activations, float32 out)", t_zarr, CPU["zarr"]),
        ("read .npy files (np.load, to float32)", t_npy, CPU["npy"]),
        *((f"  {m} alone (one pass over the layers)", phases[m], CPU[m]) for m in phases),
        ("c1-c4 together, one pass", t_stats, CPU["all"]),
        (f"rows: totals, k sweeps to 100/500, layer-wise ... ({len(rows)})", t_rows, CPU["rows"]),
        ("streamed: read each layer, reduce it (the rule)", t_stream, CPU["stream"]),
    ):
        print(f"{text:54s} {wall:8.2f} {cpu:8.2f}")
    print(f"measures / Zarr read: {t_all / t_zarr:5.2f}x wall, {cpu_all / CPU['zarr']:5.2f}x CPU (target <= 2x)")
    print(f"measures / npy read:  {t_all / t_npy:5.2f}x wall, {cpu_all / CPU['npy']:5.2f}x CPU")


def main():
    rng = np.random.default_rng(0)
    part1(rng, args.scale, args.skip_reference)
    if not args.skip_cache:
        with tempfile.TemporaryDirectory(dir=args.tmp) as tmp:
            part2(rng, args.scale, tmp)


if __name__ == "__main__":
    main()
