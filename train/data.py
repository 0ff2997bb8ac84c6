"""Batches for training and evaluation, made with tensor operations on the decoded uint8 split."""

from __future__ import annotations

import numpy as np
import torch

from export_kit.model.datasets import Split
from export_kit.model.preprocessing import Preprocessing
from train.augment import CropFlip


def channel_stats(split: Split) -> Preprocessing:
    """Per-channel mean/std of the training pixels, rounded so the manifest stays readable."""
    pixels = split.images.reshape(-1, 3).astype(np.float64) / 255.0
    mean = tuple(round(float(v), 4) for v in pixels.mean(axis=0))
    std = tuple(round(float(v), 4) for v in pixels.std(axis=0))
    return Preprocessing(mean=mean, std=std)  # type: ignore[arg-type]


class TrainBatches:
    """The training split as one uint8 NCHW tensor; batches are gathered, augmented, then normalized.

    Normalizing after augmentation keeps the zero padding at pixel value 0, as a padded photo would be.
    """

    def __init__(self, split: Split, prep: Preprocessing, *, channels_last: bool,
                 dtype: torch.dtype = torch.float32) -> None:
        self.images = torch.from_numpy(np.ascontiguousarray(split.images.transpose(0, 3, 1, 2)))
        self.labels = torch.from_numpy(split.labels.astype(np.int64))
        self.scale = prep.scale
        self.mean = torch.tensor(prep.mean, dtype=dtype).view(1, 3, 1, 1)
        self.std = torch.tensor(prep.std, dtype=dtype).view(1, 3, 1, 1)
        self.channels_last = channels_last
        self.dtype = dtype

    def __len__(self) -> int:
        return len(self.labels)

    def batch(self, index: torch.Tensor, augment: CropFlip | None) -> tuple[torch.Tensor, torch.Tensor]:
        pixels = self.images[index]
        if augment is not None:
            pixels = augment.apply(pixels)
        x = (pixels.to(self.dtype) * self.scale - self.mean) / self.std
        if self.channels_last:
            x = x.contiguous(memory_format=torch.channels_last)
        return x, self.labels[index]


def evaluate(model, split: Split, prep: Preprocessing, *, batch_size: int = 500,
             channels_last: bool = False) -> np.ndarray:
    """Logits of ``model`` on every image of ``split``, in order (no augmentation, no autograd), computed in the
    dtype and on the device of the model's weights (training leaves them on the GPU when there is one)."""
    model.eval()
    weight = next(model.parameters())
    dtype, device = weight.dtype, weight.device
    out = []
    with torch.inference_mode():
        for i in range(0, len(split), batch_size):
            x = torch.from_numpy(prep.apply(split.images[i:i + batch_size])).to(device, dtype)
            if channels_last:
                x = x.contiguous(memory_format=torch.channels_last)
            out.append(model(x).float().cpu().numpy())
    return np.concatenate(out)
