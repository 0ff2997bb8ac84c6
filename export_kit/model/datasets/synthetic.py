"""A small, learnable, generated 10-class image set for offline demos and fast tests.

Each class is an oriented stripe pattern over a class colour; position, phase and noise vary per image, so a
CNN must learn a little but can reach high accuracy in one short epoch. Never used as a silent stand-in for
CIFAR-10: it is chosen with ``--dataset synthetic``.
"""

from __future__ import annotations

import numpy as np

from export_kit.model.datasets.base import Dataset, Split

SYNTHETIC_CLASSES = [f"pattern{i}" for i in range(10)]
_PALETTE = np.array([[40, -40, 0], [-40, 40, 0], [0, -40, 40], [0, 40, -40], [40, 0, -40],
                     [-40, 0, 40], [40, 40, -40], [-40, -40, 40], [40, -40, 40], [-40, 40, -40]], np.float32)


def _make(n: int, rng: np.random.Generator, size: int = 32) -> Split:
    labels = np.arange(n, dtype=np.int64) % 10
    rng.shuffle(labels)
    yy, xx = np.mgrid[0:size, 0:size].astype(np.float32)
    angle = (labels % 5)[:, None, None] * (np.pi / 5)
    freq = np.where(labels < 5, 0.45, 1.1)[:, None, None]
    phase = rng.uniform(0, 2 * np.pi, (n, 1, 1)).astype(np.float32)
    stripes = np.sin((np.cos(angle) * xx + np.sin(angle) * yy) * freq + phase)
    tint = _PALETTE[labels][:, None, None, :]
    img = 128 + 50 * stripes[..., None] + 0.5 * tint + rng.normal(0, 30, (n, size, size, 3))
    return Split(np.clip(img, 0, 255).astype(np.uint8), labels)


def synthetic_dataset(n_train: int = 4000, n_test: int = 1000, seed: int = 0) -> Dataset:
    rng = np.random.default_rng(seed)
    provenance = {"dataset": "synthetic", "seed": seed, "train_images": n_train, "test_images": n_test}
    return Dataset(_make(n_train, rng), _make(n_test, rng), list(SYNTHETIC_CLASSES), provenance)
