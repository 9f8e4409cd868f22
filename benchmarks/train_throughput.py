"""Training throughput (images/s): the project's loop vs a plain torchvision loop.

Both train the same model (same architecture and initial weights) with SGD on the same
uint8 images, with the paper's augmentation (shifts up to 4 px, reflection fill,
horizontal flips) and per-channel standardization:

* fast: :func:`intraclass.train.train_epoch`: the data resident on the device as uint8,
  a batched gather for augmentation, normalization on the device, one host sync per
  epoch; bf16 autocast and channels_last on CUDA.
* reference: ``torch.utils.data.DataLoader`` over a dataset applying torchvision's
  ``ToTensor, RandomCrop(padding=4, padding_mode="reflect"), RandomHorizontalFlip,
  Normalize`` to each sample, float32, batches copied to the device, the loss read per
  step as a plain loop would print it.

The first epoch of each loop is a warm-up and is not timed; then the loops alternate
epoch by epoch (fair on a shared machine) and the medians are printed. Examples:

    python benchmarks/train_throughput.py                       # ~1 min on a 2-core CPU
    python benchmarks/train_throughput.py --size 32 --channels 3 --samples 20000 \\
        --base-width 32 --arch resnet --workers 8 --device cuda
"""

from __future__ import annotations

import argparse
import time

import numpy as np
import torch
from torch import nn
from torch.utils.data import DataLoader, Dataset
from torchvision import transforms

from intraclass.augment import Normalizer, channel_stats
from intraclass.models import build_model
from intraclass.train import train_epoch


class ImageDataset(Dataset):
    """uint8 (N, H, W, C) images through per-sample torchvision transforms."""

    def __init__(self, images: np.ndarray, labels: np.ndarray, transform):
        self.images, self.labels, self.transform = images, labels, transform

    def __len__(self):
        return len(self.images)

    def __getitem__(self, i):
        return self.transform(self.images[i]), int(self.labels[i])


def reference_epoch(model, optimizer, loader, device) -> float:
    model.train()
    total = 0
    for x, y in loader:
        x, y = x.to(device, non_blocking=True), y.to(device, non_blocking=True)
        loss = nn.functional.cross_entropy(model(x), y)
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        loss.item()  # a plain loop logs the loss every step
        total += len(y)
    return total


def measure(device: torch.device, args) -> tuple[float, float, float]:
    rng = np.random.default_rng(0)
    images = rng.integers(0, 256, (args.samples, args.size, args.size, args.channels), dtype=np.uint8)
    labels = rng.integers(0, 10, args.samples)
    mean, std = channel_stats(images)
    torch.manual_seed(0)
    initial = build_model(args.arch, 10, args.channels, base_width=args.base_width)
    on_cuda = device.type == "cuda"

    def fresh_model(channels_last: bool):
        model = build_model(args.arch, 10, args.channels, base_width=args.base_width)
        model.load_state_dict(initial.state_dict())
        model = model.to(device)
        if channels_last:
            model = model.to(memory_format=torch.channels_last)
        return model, torch.optim.SGD(model.parameters(), lr=0.01, momentum=0.9)

    def timed(run) -> float:
        """Images/s of one epoch of ``run``."""
        if on_cuda:
            torch.cuda.synchronize()
        began = time.perf_counter()
        run()
        if on_cuda:
            torch.cuda.synchronize()
        return args.samples / (time.perf_counter() - began)

    # fast loop
    fast_model, fast_optimizer = fresh_model(channels_last=on_cuda)
    x = torch.from_numpy(images).to(device)
    y = torch.from_numpy(labels).to(device)
    normalize = Normalizer(mean, std, device, contiguous=not on_cuda)
    generator = torch.Generator().manual_seed(0)

    def fast_epoch():
        train_epoch(fast_model, fast_optimizer, x, y, normalize, generator, args.batch_size,
                    augment=True, autocast=on_cuda)

    # reference loop
    ref_model, ref_optimizer = fresh_model(channels_last=False)
    transform = transforms.Compose([
        transforms.ToTensor(),
        transforms.RandomCrop(args.size, padding=4, padding_mode="reflect"),
        transforms.RandomHorizontalFlip(),
        transforms.Normalize(mean.tolist(), std.tolist()),
    ])
    loader = DataLoader(ImageDataset(images, labels, transform), batch_size=args.batch_size,
                        shuffle=True, num_workers=args.workers, pin_memory=on_cuda,
                        persistent_workers=args.workers > 0)

    def reference_loop_epoch():
        reference_epoch(ref_model, ref_optimizer, loader, device)

    # one warm-up epoch each (allocator, cudnn autotuning, worker start-up), then the
    # timed epochs alternate so both loops see the same load on a shared machine
    timed(fast_epoch), timed(reference_loop_epoch)
    rounds = [(timed(fast_epoch), timed(reference_loop_epoch)) for _ in range(args.epochs)]
    fast, reference = (float(np.median(r)) for r in zip(*rounds))
    ratio = float(np.median([f / r for f, r in rounds]))
    return fast, reference, ratio


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--arch", default="vgg", choices=["vgg", "resnet"])
    parser.add_argument("--base-width", type=int, default=8)
    parser.add_argument("--size", type=int, default=28, help="image height and width")
    parser.add_argument("--channels", type=int, default=1)
    parser.add_argument("--samples", type=int, default=2000, help="images per epoch")
    parser.add_argument("--batch-size", type=int, default=100)
    parser.add_argument("--epochs", type=int, default=3,
                        help="timed epochs of each loop, alternating (after 1 warm-up each)")
    parser.add_argument("--workers", type=int, default=0, help="DataLoader workers (reference)")
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--device", default="all", help="cpu, cuda or all (cpu, and cuda if present)")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    devices = ["cpu", "cuda"] if args.device == "all" else [args.device]
    devices = [d for d in devices if d != "cuda" or torch.cuda.is_available()]
    print(f"{args.arch} base width {args.base_width}, {args.samples} images "
          f"{args.size}x{args.size}x{args.channels}, batch {args.batch_size}, "
          f"{args.epochs} timed epochs, {args.threads} threads, {args.workers} loader workers")
    for name in devices:
        device = torch.device(name)
        label = torch.cuda.get_device_name(device) if device.type == "cuda" else "cpu"
        fast, reference, ratio = measure(device, args)
        print(f"{label}: fast {fast:,.0f} img/s, torchvision DataLoader {reference:,.0f} img/s "
              f"(medians over epochs), ratio {ratio:.2f}x (median of per-epoch ratios)")


if __name__ == "__main__":
    main()
