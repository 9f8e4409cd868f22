"""Activation store vs plain ``np.save`` / ``np.load``: throughput, size, peak memory.

    python benchmarks/activation_store.py                 # 10,000 samples (CIFAR-100-like subset)
    python benchmarks/activation_store.py --samples 50000 # the whole CIFAR-100 training set

Shape: 24 layers totalling 2,880 neurons (the Wide ResNet at depth x1.5: six sites of
32, 64, 128, 256 channels). Values imitate max-pooled BN outputs (the max of 16 standard
normals per sample and neuron), so the compression ratios are those of noisy floats.

* write: the store streamed in batches of ``--batch`` samples (:class:`StoreWriter`, as
  extraction does), against one ``np.save`` per layer of the whole array;
* read: every layer as float32 (:meth:`ActivationStore.layers`, what the measures call),
  against ``np.load`` + ``astype(float32)`` per layer; the files were just written, so
  both reads come from the page cache;
* each timing is the best of ``--repeats`` runs (other processes only slow runs down);
* size on disk of each; throughput = uncompressed bytes / seconds; ratios store / numpy
  (above 1: the store is faster);
* peak traced memory (tracemalloc) of a streamed write at two sample counts (40,000 and
  120,000, whatever ``--samples``): it stays at one batch plus the chunk buffers
  (``chunk_bytes`` per layer) and does not grow with the number of samples.
"""

from __future__ import annotations

import argparse
import shutil
import tempfile
import time
import tracemalloc
from pathlib import Path

import numpy as np

from intraclass.activations import DEFAULT_CHUNK_BYTES, StoreWriter, open_store

NEURONS = [32] * 6 + [64] * 6 + [128] * 6 + [256] * 6  # 24 layers, 2,880 neurons
PEAK_SAMPLES = (40_000, 120_000)


def fake_batch(rng: np.random.Generator, rows: int) -> list[np.ndarray]:
    """One batch of max-pooled-BN-like float32 values per layer: (rows, neurons)."""
    return [rng.standard_normal((rows, k, 16), dtype=np.float32).max(axis=2) for k in NEURONS]


def disk_bytes(path: Path) -> int:
    return sum(f.stat().st_size for f in path.rglob("*") if f.is_file())


def stream_write(path: Path, batches, n: int, dtype: str, compressor: str) -> None:
    layers = [(f"layer{i:02d}", k) for i, k in enumerate(NEURONS)]
    with StoreWriter(path, layers, n, fine=np.zeros(n, dtype=np.int64), dtype=dtype,
                     compressor=compressor) as writer:
        for batch in batches:
            writer.append(batch)
        writer.close()


def best_time(run, clean=None, repeats: int = 3) -> float:
    """Fastest of ``repeats`` runs in seconds (other processes only ever slow a run down)."""
    times = []
    for _ in range(repeats):
        if clean is not None:
            clean()
        began = time.perf_counter()
        run()
        times.append(time.perf_counter() - began)
    return min(times)


def throughput(root: Path, layers: list[np.ndarray], dtype: str, compressor: str,
               batch: int, repeats: int) -> dict:
    n = len(layers[0])
    stored = [a.astype(dtype) for a in layers]
    raw = sum(a.nbytes for a in stored)
    store, npy = root / f"{dtype}-{compressor}.zarr", root / f"{dtype}-npy"
    files = [npy / f"layer{i:02d}.npy" for i in range(len(stored))]

    def write_store():
        stream_write(store, ([a[s:s + batch] for a in stored] for s in range(0, n, batch)),
                     n, dtype, compressor)

    def write_npy():
        npy.mkdir()
        for f, a in zip(files, stored):
            np.save(f, a)

    def rmtree(path):
        return lambda: shutil.rmtree(path, ignore_errors=True)

    def read_npy():
        return [np.load(f).astype(np.float32, copy=False) for f in files]

    store_write = best_time(write_store, rmtree(store), repeats)
    npy_write = best_time(write_npy, rmtree(npy), repeats)
    store_read = best_time(lambda: open_store(store).layers(), repeats=repeats)
    npy_read = best_time(read_npy, repeats=repeats)
    for a, b in zip(open_store(store).layers(), read_npy()):  # the same values came back
        np.testing.assert_array_equal(a, b)
    result = dict(dtype=dtype, compressor=compressor, raw_mb=raw / 1e6,
                  store_write=raw / store_write / 1e6, npy_write=raw / npy_write / 1e6,
                  store_read=raw / store_read / 1e6, npy_read=raw / npy_read / 1e6,
                  store_mb=disk_bytes(store) / 1e6, npy_mb=disk_bytes(npy) / 1e6)
    shutil.rmtree(store)
    shutil.rmtree(npy)
    return result


def streaming_peak(root: Path, n: int, batch: int) -> float:
    """Peak traced MB while streaming ``n`` generated samples into a float32 store."""
    rng = np.random.default_rng(1)
    batches = ([rng.standard_normal((min(batch, n - s), k), dtype=np.float32) for k in NEURONS]
               for s in range(0, n, batch))
    tracemalloc.start()
    stream_write(root / "peak.zarr", batches, n, "float32", "zstd")
    peak = tracemalloc.get_traced_memory()[1]
    tracemalloc.stop()
    shutil.rmtree(root / "peak.zarr")
    return peak / 1e6


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--samples", type=int, default=10_000)
    parser.add_argument("--batch", type=int, default=500, help="extraction batch size")
    parser.add_argument("--repeats", type=int, default=3, help="best of this many runs")
    parser.add_argument("--dir", default=None, help="scratch directory (default: a temp dir)")
    args = parser.parse_args()
    rng = np.random.default_rng(0)
    layers = [np.concatenate(parts) for parts in zip(
        *(fake_batch(rng, min(5000, args.samples - s)) for s in range(0, args.samples, 5000)))]
    print(f"{args.samples} samples x {len(NEURONS)} layers ({sum(NEURONS)} neurons), "
          f"batches of {args.batch}, chunks of ~{DEFAULT_CHUNK_BYTES / 2**20:.0f} MiB, "
          f"best of {args.repeats} runs\n")
    print("| dtype | compressor | data MB | write MB/s store / npy (ratio) "
          "| read MB/s store / npy (ratio) | disk MB store / npy |")
    print("| --- | --- | ---: | ---: | ---: | ---: |")
    with tempfile.TemporaryDirectory(dir=args.dir) as scratch:
        for dtype in ("float16", "float32"):
            for compressor in ("zstd", "none"):
                r = throughput(Path(scratch), layers, dtype, compressor, args.batch, args.repeats)
                print(f"| {dtype} | {compressor} | {r['raw_mb']:.0f} "
                      f"| {r['store_write']:.0f} / {r['npy_write']:.0f} "
                      f"({r['store_write'] / r['npy_write']:.2f}) "
                      f"| {r['store_read']:.0f} / {r['npy_read']:.0f} "
                      f"({r['store_read'] / r['npy_read']:.2f}) "
                      f"| {r['store_mb']:.1f} / {r['npy_mb']:.1f} |", flush=True)
        del layers
        # Both counts past the point where every layer fills a whole chunk buffer
        # (chunk_bytes / (32 neurons * 4 bytes) = 32,768 samples at 4 MiB).
        peaks = {n: streaming_peak(Path(scratch), n, args.batch) for n in PEAK_SAMPLES}
    batch_mb = args.batch * sum(NEURONS) * 4 / 1e6
    buffers_mb = len(NEURONS) * DEFAULT_CHUNK_BYTES / 1e6
    print("\npeak traced memory (tracemalloc) of a streamed float32 zstd write: "
          + ", ".join(f"{mb:.1f} MB at {n:,} samples ({n * sum(NEURONS) * 4 / 1e6:,.0f} MB "
                      "of data)" for n, mb in peaks.items())
          + f"; one batch is {batch_mb:.1f} MB, the chunk buffers at most {buffers_mb:.0f} MB")


if __name__ == "__main__":
    main()
