"""What the paper study (config/paper.yaml, 528 models) costs: GPU-hours and disk per stage.

GPU time is computed, not measured: each model's forward FLOPs for one 32x32x3 image are
counted by torch.utils.flop_counter.FlopCounterMode on the CPU (convolutions and linear
layers: 2 FLOPs per multiply-add), then multiplied by the images each stage pushes
through the model:

* train:     3 x forward (forward + backward) x training images x epochs (the upper
             bound: no early stop), plus one forward pass over the training and test sets
* extract:   forward x extracted samples x checkpoints (final + evolution epochs)
* sharpness: the upper bound of the bisections (every one runs max_steps probes):
             sigma' and sigma'': forward x draws x subset x training images per probe;
             alpha' and alpha'': 3 x forward x epochs x steps x batch (the ascent) plus
             forward x subset x training images per probe
             (settings: intraclass.sharpness.DEFAULTS, overridden by the config)

and divided by an ASSUMED effective GPU throughput (--tflops, default 40 TFLOP/s: about
13% of an A100's 312 TFLOP/s dense bf16 peak, what small convnets on 32x32 images reach
at these batch sizes at best). This is an assumption, not a measurement: replace it by
the rate measured on your GPU (python benchmarks/train_throughput.py --device cuda ...,
images/s x 3 x forward FLOPs) and rerun with --tflops. Black-box c0, layer rotation and
the CPU stages (measures, analysis) are not counted (seconds per model on a GPU, or CPU).

Disk is exact arithmetic: dataset arrays (uint8), checkpoints (float32 weights: model.pt,
the evolution checkpoints, the transient resume.pt with the optimizer's state) and the
activation cache (samples x measured neurons x bytes per value, before compression).

    python benchmarks/paper_budget.py                  # the paper study, 40 TFLOP/s assumed
    python benchmarks/paper_budget.py --tflops 25 --config config/paper.yaml
"""

from __future__ import annotations

import argparse
import sys
from collections import defaultdict
from functools import cache
from pathlib import Path

import torch
import yaml
from torch.utils.flop_counter import FlopCounterMode

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "src"))

from intraclass.config import load_studies, validate_config  # noqa: E402
from intraclass.models import build_model, count_neurons  # noqa: E402
from intraclass.sharpness import DEFAULTS as SHARPNESS  # noqa: E402

#: The paper's datasets: training and test images, classes per label level, image shape.
DATASETS = {
    "cifar10": {"train": 50_000, "test": 10_000, "classes": {"fine": 10}, "shape": (3, 32, 32)},
    "cifar100": {"train": 50_000, "test": 10_000, "classes": {"fine": 100, "coarse": 20},
                 "shape": (3, 32, 32)},
}
BYTES = {"float16": 2, "bfloat16": 2, "float32": 4}
GB = 1e9


@cache
def model_facts(arch: str, classes: int, width: float, depth: float, base_width: int,
                shape: tuple[int, int, int]) -> tuple[float, int, int]:
    """(forward FLOPs of one image, parameters, measured neurons) of one architecture."""
    model = build_model(arch, num_classes=classes, in_channels=shape[0], width=width,
                        depth=depth, base_width=base_width).eval()
    with torch.no_grad(), FlopCounterMode(display=False) as counter:
        model(torch.zeros(1, *shape))
    params = sum(p.numel() for p in model.parameters())
    return float(counter.get_total_flops()), params, count_neurons(model)


def sharpness_images(settings: dict, n_train: int) -> tuple[float, float]:
    """(forward-equivalent images, of which the ascent's fwd+bwd counted x3) of one model."""
    sigma = {**SHARPNESS["sigma"], **settings.get("sigma", {})}
    alpha = {**SHARPNESS["alpha"], **settings.get("alpha", {})}
    measures = settings.get("measures", SHARPNESS["measures"])
    per_sigma = sigma["max_steps"] * sigma["draws"] * sigma["subset"] * n_train
    per_alpha = alpha["max_steps"] * (3 * alpha["epochs"] * alpha["steps_per_epoch"] * alpha["batch_size"]
                                      + alpha["subset"] * n_train)
    n_sigma = sum(m.startswith("sigma") for m in measures)
    n_alpha = sum(m.startswith("alpha") for m in measures)
    return n_sigma * per_sigma + n_alpha * per_alpha, n_alpha * per_alpha


def study_budget(study) -> dict:
    """GPU FLOPs per stage and bytes per stage of one study."""
    s = study.settings
    data = DATASETS[s["dataset"]]
    classes = data["classes"][s["labels"]]
    n_train, n_test = data["train"], data["test"]
    per_class = s["extract"]["per_class"]
    n_extract = n_train if per_class is None else min(n_train, per_class * data["classes"]["fine"])
    epochs = s["training"]["epochs"]
    sharp_images, _ = sharpness_images(s["sharpness"], n_train)
    flops, disk = defaultdict(float), defaultdict(float)
    disk["dataset"] = (n_train + n_test) * data["shape"][0] * data["shape"][1] * data["shape"][2]
    for model in study.models:
        fwd, params, neurons = model_facts(s["arch"]["name"], classes, model.width, model.depth,
                                           s["arch"]["base_width"], data["shape"])
        checkpoints = len(study.checkpoints(model.id))
        flops["train"] += fwd * (3 * n_train * epochs + n_train + n_test)
        flops["extract"] += fwd * n_extract * checkpoints
        flops["sharpness"] += fwd * sharp_images
        disk["checkpoints"] += 4 * params * checkpoints  # model.pt + ckpt/epoch*.pt
        optimizer_copies = 2 if model.optimizer == "adam" else 1  # momentum, or Adam's two moments
        resume = 4 * params * (1 + optimizer_copies)  # deleted when the training ends
        disk["resume.pt per running training (max)"] = max(disk["resume.pt per running training (max)"], resume)
        disk["activations"] += n_extract * neurons * BYTES[s["extract"]["dtype"]] * checkpoints
    return {"models": len(study.models), "flops": flops, "disk": disk}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--config", default=str(ROOT / "config" / "paper.yaml"))
    parser.add_argument("--tflops", type=float, default=40.0,
                        help="ASSUMED effective GPU throughput in TFLOP/s (replace by a measurement)")
    args = parser.parse_args()
    config = validate_config(yaml.safe_load(Path(args.config).read_text()), ROOT / "config" / "schema.yaml")
    studies = load_studies(config)
    rate = args.tflops * 1e12
    totals_flops, totals_disk, models = defaultdict(float), defaultdict(float), 0
    print(f"config {args.config}; GPU time at an ASSUMED {args.tflops:g} TFLOP/s effective (not measured)")
    print(f"{'study':<26}{'models':>7}{'train h':>10}{'extract h':>11}{'sharp. h':>10}"
          f"{'acts GB':>10}{'ckpt GB':>9}")
    for name, study in studies.items():
        b = study_budget(study)
        models += b["models"]
        for k, v in b["flops"].items():
            totals_flops[k] += v
        for k, v in b["disk"].items():
            totals_disk[k] = max(totals_disk[k], v) if "max" in k else totals_disk[k] + v
        hours = {k: v / rate / 3600 for k, v in b["flops"].items()}
        print(f"{name:<26}{b['models']:>7}{hours['train']:>10.1f}{hours['extract']:>11.2f}"
              f"{hours['sharpness']:>10.1f}{b['disk']['activations'] / GB:>10.1f}"
              f"{b['disk']['checkpoints'] / GB:>9.2f}")
    hours = {k: v / rate / 3600 for k, v in totals_flops.items()}
    print(f"{'total':<26}{models:>7}{hours['train']:>10.1f}{hours['extract']:>11.2f}"
          f"{hours['sharpness']:>10.1f}{totals_disk['activations'] / GB:>10.1f}"
          f"{totals_disk['checkpoints'] / GB:>9.2f}")
    print(f"GPU-hours in all: {sum(hours.values()):.0f} "
          f"(train {hours['train']:.0f}, extract {hours['extract']:.1f}, sharpness {hours['sharpness']:.0f}); "
          f"PFLOP: {sum(totals_flops.values()) / 1e15:.0f}")
    print("disk (GB, uncompressed): " + ", ".join(f"{k} {v / GB:.2f}" for k, v in totals_disk.items())
          + " (datasets once per study here; shared by studies on the same dataset)")


if __name__ == "__main__":
    main()
