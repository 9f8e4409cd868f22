"""One sharpness probe (sigma', 10 draws on 10% of the training set), batched vs naive.

    python benchmarks/sharpness.py                    # VGG base width 8, 28x28x1, 5,000 samples
    python benchmarks/sharpness.py --device cuda --samples 50000 --base-width 32 --size 32 --channels 3

* batched (:func:`intraclass.sharpness.sigma_probe`): uint8 data resident on the device,
  normalized per batch there, perturbation written in place into the model and restored
  from copies, evaluation batches of ``--eval-batch`` samples, bf16 autocast on CUDA;
* naive: the usual loop: per draw a deep copy of the model perturbed through its
  parameters, batches of ``--naive-batch`` samples normalized with numpy on the host and
  copied to the device, fp32;
* both use the same draws, so their accuracies must agree (printed); each timing is the
  best of ``--repeats`` runs. Ratio naive / batched: above 1, the batched probe is faster.
"""

from __future__ import annotations

import argparse
import copy
import time

import numpy as np
import torch

from intraclass.augment import Normalizer, channel_stats
from intraclass.models import build_model
from intraclass.runtime import pick_device
from intraclass.sharpness import DEFAULTS, Evaluator, sigma_probe


def naive_probe(model, images: np.ndarray, labels: np.ndarray, mean, std, cfg: dict,
                generator: torch.Generator, m: float, batch: int, device) -> float:
    """Same draws as ``sigma_probe`` (subset, then noise per tensor), the plain way."""
    correct = seen = 0
    n = len(labels)
    for _ in range(cfg["draws"]):
        idx = torch.randperm(n, generator=generator, device=generator.device)[:round(cfg["subset"] * n)]
        idx = idx.cpu().numpy()
        noisy = copy.deepcopy(model)
        with torch.no_grad():
            for p in noisy.parameters():
                noise = torch.randn(p.shape, generator=generator, device=p.device)
                p.add_(m * (p.abs() + cfg["offset"]) * noise)
        noisy.eval()
        for start in range(0, len(idx), batch):
            rows = idx[start:start + batch]
            x = ((images[rows].astype(np.float32) / 255 - mean) / std).transpose(0, 3, 1, 2)
            with torch.no_grad():
                logits = noisy(torch.from_numpy(np.ascontiguousarray(x, dtype=np.float32)).to(device))
            correct += (logits.argmax(1).cpu().numpy() == labels[rows]).sum()
        seen += len(idx)
    return correct / seen


def best_of(repeats: int, fn):
    times, value = [], None
    for _ in range(repeats):
        if torch.cuda.is_available():
            torch.cuda.synchronize()
        start = time.perf_counter()
        value = fn()
        if torch.cuda.is_available():
            torch.cuda.synchronize()
        times.append(time.perf_counter() - start)
    return min(times), value


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--device", default="auto")
    parser.add_argument("--samples", type=int, default=5000)
    parser.add_argument("--size", type=int, default=28)
    parser.add_argument("--channels", type=int, default=1)
    parser.add_argument("--base-width", type=int, default=8)
    parser.add_argument("--eval-batch", type=int, default=1000)
    parser.add_argument("--naive-batch", type=int, default=100)
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()

    device = pick_device(args.device)
    rng = np.random.default_rng(0)
    images = rng.integers(0, 256, (args.samples, args.size, args.size, args.channels), dtype=np.uint8)
    labels = rng.integers(0, 10, args.samples)
    torch.manual_seed(0)
    model = build_model("vgg", 10, args.channels, base_width=args.base_width).to(device).eval()
    mean, std = channel_stats(images)
    cfg = dict(DEFAULTS["sigma"])
    m = 0.05

    normalize = Normalizer(mean, std, device, contiguous=device.type != "cuda")
    evaluator = Evaluator(torch.from_numpy(images).to(device), torch.from_numpy(labels).to(device),
                          normalize, args.eval_batch)

    def batched():
        return sigma_probe(model, evaluator, False, cfg, torch.Generator(device).manual_seed(0))(m)["acc"]

    def naive():
        return naive_probe(model, images, labels, mean.astype(np.float32), std.astype(np.float32),
                           cfg, torch.Generator(device).manual_seed(0), m, args.naive_batch, device)

    batched()  # warm-up (cuDNN autotuning, allocator)
    t_fast, acc_fast = best_of(args.repeats, batched)
    t_naive, acc_naive = best_of(args.repeats, naive)
    images_per_probe = cfg["draws"] * round(cfg["subset"] * args.samples)
    print(f"device {device}, VGG base width {args.base_width}, {args.samples} samples of "
          f"{args.size}x{args.size}x{args.channels}, {images_per_probe} images per probe")
    print(f"batched: {t_fast * 1e3:8.1f} ms  ({images_per_probe / t_fast:8.0f} img/s)  acc {acc_fast:.4f}")
    print(f"naive:   {t_naive * 1e3:8.1f} ms  ({images_per_probe / t_naive:8.0f} img/s)  acc {acc_naive:.4f}")
    print(f"ratio naive / batched: {t_naive / t_fast:.2f}")


if __name__ == "__main__":
    main()
