"""Bootstrap intervals of the Kendall table: time against one plain table.

    PYTHONPATH=src python benchmarks/bootstrap.py [--images 10000]
        [--resamples 1000] [--max-k 300] [--threads 2]

A paper-sized study: the 192 configurations of the paper's grid (appendix A.1), 8
measures, the k curves of c1 and c3 for k = 1..max_k, and a test set of ``images``
images (CIFAR: 10,000). Prints the time of one plain table (the 8 measures and every k
through intraclass.kendall), the time of the bootstrap of all of them
(intraclass.evaluation.bootstrap.replicates + percentile intervals) and their ratio.
Target of issue 14: the bootstrap within 60 s on 2 cores.
"""

from __future__ import annotations

import argparse
import itertools
import time

import numpy as np
import pandas as pd
from threadpoolctl import threadpool_limits

from intraclass import kendall
from intraclass.evaluation import bootstrap

LR_WD = [(0.01, 0.0), (0.32, 0.0), (0.1, 0.0), (0.1, 4e-5)]
DROPOUT_AUG = [(0.0, True), (0.0, False), (0.2, False), (0.4, False)]
WIDTH_DEPTH = [(1.0, 1.0), (1.5, 1.0), (1.0, 1.5)]


def paper_grid() -> pd.DataFrame:
    rows = [dict(model=f"m{i}", lr=lr, weight_decay=wd, batch_size=bs, optimizer=opt, dropout=do, augment=aug,
                 width=w, depth=d, seed=0)
            for i, ((lr, wd), bs, opt, (do, aug), (w, d)) in enumerate(
                itertools.product(LR_WD, [100, 300], ["sgd", "adam"], DROPOUT_AUG, WIDTH_DEPTH))]
    return pd.DataFrame(rows)


def study(images: int, max_k: int, rng: np.random.Generator):
    models = paper_grid()
    truth = rng.uniform(0.5, 0.9, len(models))
    correct = rng.random((len(models), images)) < truth[:, None]
    models["test_acc"] = correct.mean(axis=1)
    measures = list(kendall.MEASURES[:8])
    for m in measures:
        models[m] = kendall.direction(m) * models["test_acc"] + rng.normal(scale=0.05, size=len(models))
    ks = np.arange(1, max_k + 1)
    sweeps = [models["test_acc"].to_numpy()[:, None] * ks + rng.normal(scale=0.5, size=(len(models), max_k))
              for _ in ("c1", "c3")]
    return models, measures, np.hstack([kendall.oriented(models, measures), *sweeps]), correct


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--images", type=int, default=10_000)
    parser.add_argument("--resamples", type=int, default=1000)
    parser.add_argument("--max-k", type=int, default=300)
    parser.add_argument("--threads", type=int, default=2)
    args = parser.parse_args()
    models, measures, values, correct = study(args.images, args.max_k, np.random.default_rng(0))
    print(f"{len(models)} models, {len(measures)} measures + 2 k curves of {args.max_k} k "
          f"({values.shape[1]} columns), {args.images} test images, {args.resamples} resamples, "
          f"{args.threads} threads")
    with threadpool_limits(args.threads):
        start = time.perf_counter()
        groups = kendall.axis_groups(models)
        kendall.granulated_kendall_columns(values, models["test_acc"].to_numpy(), groups)
        plain = time.perf_counter() - start
        start = time.perf_counter()
        settings = bootstrap.BootstrapSettings(args.resamples, 0, 0.95)
        reps = bootstrap.replicates(values, groups, correct, settings)
        bootstrap.percentile_interval(reps, settings.level)
        boot = time.perf_counter() - start
    print(f"one plain table : {plain:8.2f} s")
    print(f"bootstrap       : {boot:8.2f} s  ({boot / args.resamples * 1000:.1f} ms per resample; target 60 s)")
    print(f"ratio           : {boot / plain:8.1f} x one plain table")


if __name__ == "__main__":
    main()
