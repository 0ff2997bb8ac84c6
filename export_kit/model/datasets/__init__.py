"""Dataset readers. They live in the toolkit, not in ``train``, because verify needs test images too."""

from __future__ import annotations

import os

from export_kit.errors import UsageError
from export_kit.model.datasets.base import Dataset, Split
from export_kit.model.geometry import Geometry

DATASETS = ("cifar10", "synthetic")

__all__ = ["DATASETS", "Dataset", "Split", "load_dataset"]


def load_dataset(name: str, data_dir: str | os.PathLike | None = None, *, progress: bool = True,
                 seed: int = 0, geometry: Geometry | None = None) -> Dataset:
    """``cifar10`` (or any image folder) from disk (see :func:`export_kit.model.datasets.cifar.load_cifar10`) or the
    generated set; ``geometry`` resizes and crops every image (photos of mixed sizes become the model's size)."""
    if name == "cifar10":
        from export_kit.model.datasets.cifar import load_cifar10

        return load_cifar10(data_dir, progress=progress, geometry=geometry)
    if name == "synthetic":
        from export_kit.model.datasets.synthetic import synthetic_dataset

        return synthetic_dataset(seed=seed).resized(geometry)
    raise UsageError(f"unknown dataset {name!r}; choose one of: {', '.join(DATASETS)}")
