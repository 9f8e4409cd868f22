"""Batched, device-side input pipeline: paper augmentation and normalization.

The whole training set lives on the training device as uint8 (N, H, W, C); a batch is
cut from it by index, augmented by one gather and normalized there, so no per-sample
Python runs in the training loop and nothing is copied from the host per step.

Augmentation (paper appendix A.2): horizontal and vertical shifts of up to 4 pixels,
the uncovered border filled by reflection, and horizontal flips. Shifts are uniform
integers in [-max_shift, max_shift] per axis and sample; the flip has probability 1/2.
This is exactly torchvision's ``RandomCrop(size, padding=4, padding_mode="reflect")``
followed by ``RandomHorizontalFlip()``: reflection without repeating the edge pixel
(``dcb|abcd|cba``, numpy's "reflect"). Keras' ``fill_mode="reflect"`` repeats it
(``dcba|abcd|dcba``); the paper does not say which, and the difference is one pixel
column of the fill.
"""

from __future__ import annotations

import numpy as np
import torch

MAX_SHIFT = 4  # pixels (paper appendix A.2)


def reflect_index(index: torch.Tensor, size: int) -> torch.Tensor:
    """Map integer positions, possibly outside ``[0, size)``, into it by reflection.

    Reflection about the edge pixels without repeating them (numpy "reflect"), extended
    periodically with period ``2 * (size - 1)``, so any shift is valid for any size.
    """
    if size == 1:
        return torch.zeros_like(index)
    period = 2 * (size - 1)
    index = torch.remainder(index, period)
    return torch.where(index >= size, period - index, index)


def random_shift_flip(count: int, generator: torch.Generator,
                      max_shift: int = MAX_SHIFT) -> torch.Tensor:
    """Draw augmentation parameters: int64 (count, 3) of (row shift, column shift, flip)."""
    shifts = torch.randint(-max_shift, max_shift + 1, (count, 2), generator=generator)
    flips = torch.randint(0, 2, (count, 1), generator=generator)
    return torch.cat([shifts, flips], dim=1)


def shift_flip(images: torch.Tensor, params: torch.Tensor) -> torch.Tensor:
    """Shift each image by (dy, dx) with reflection fill, then flip it if asked.

    images: (N, H, W, C), any dtype (uint8 in training), on any device.
    params: int64 (N, 3) of (dy, dx, flip), on the same device. Output pixel (h, w) of
    sample n is input pixel (reflect(h + dy_n), reflect(w' + dx_n)) with w' = W-1-w when
    flipped, else w: one advanced-indexing gather for the whole batch.
    """
    n, height, width = images.shape[:3]
    device = images.device
    rows = reflect_index(torch.arange(height, device=device)[None, :] + params[:, :1], height)
    cols = reflect_index(torch.arange(width, device=device)[None, :] + params[:, 1:2], width)
    cols = torch.where(params[:, 2:3].bool(), cols.flip(1), cols)  # (N, W)
    samples = torch.arange(n, device=device)[:, None, None]
    return images[samples, rows[:, :, None], cols[:, None, :]]  # (N, H, W, C)


def channel_stats(images: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Per-channel mean and std of uint8 (N, H, W, C) images scaled to [0, 1] (float64).

    Used to standardize the inputs (the paper does not state its preprocessing; zero
    mean, unit variance per channel over the training set is the common CIFAR choice).
    A constant channel gets std 1 instead of 0.
    """
    pixels = images.reshape(-1, images.shape[-1])
    total = np.zeros(pixels.shape[1])
    total_sq = np.zeros(pixels.shape[1])
    for start in range(0, len(pixels), 1 << 22):  # bounded float64 temporaries
        chunk = pixels[start:start + (1 << 22)].astype(np.float64) / 255.0
        total += chunk.sum(0)
        total_sq += (chunk**2).sum(0)
    count = max(len(pixels), 1)
    mean = total / count
    std = np.sqrt(np.maximum(total_sq / count - mean**2, 0.0))
    return mean, np.where(std > 1e-8, std, 1.0)


class Normalizer:
    """uint8 (N, H, W, C) -> float32 (N, C, H, W) standardized, channels_last in memory.

    The NHWC -> NCHW permute is a view whose strides are exactly channels_last, so the
    CUDA path gets channels_last inputs for free; ``contiguous=True`` (the CPU path)
    makes an NCHW-contiguous copy instead.
    """

    def __init__(self, mean: np.ndarray, std: np.ndarray, device: torch.device,
                 contiguous: bool = False):
        # scale folds the /255: (x/255 - mean)/std = x * scale + shift
        std = np.asarray(std, dtype=np.float64)
        self.mean, self.std = [float(m) for m in mean], [float(v) for v in std]
        self.scale = torch.tensor(1.0 / (255.0 * std), dtype=torch.float32, device=device)
        self.shift = torch.tensor(-np.asarray(mean) / std, dtype=torch.float32, device=device)
        self.contiguous = contiguous

    def to_dict(self) -> dict:
        """Plain ``{"mean": [...], "std": [...]}`` (stored in every training checkpoint)."""
        return {"mean": self.mean, "std": self.std}

    @classmethod
    def from_checkpoint(cls, checkpoint: dict, device: torch.device,
                        contiguous: bool = False) -> Normalizer:
        """The normalization a checkpoint's model was trained with (its ``normalization``):
        the one way extraction and sharpness normalize their inputs."""
        if "normalization" not in checkpoint:
            model = checkpoint.get("hparams", {}).get("id", "?")
            raise KeyError(f"checkpoint of model {model} has no 'normalization' "
                           "(written by an older intraclass: retrain the model)")
        stats = checkpoint["normalization"]
        return cls(stats["mean"], stats["std"], device, contiguous)

    def __call__(self, images: torch.Tensor) -> torch.Tensor:
        x = (images.float() * self.scale + self.shift).permute(0, 3, 1, 2)
        return x.contiguous() if self.contiguous else x
