"""Dataset readers. They live in the toolkit, not in ``train``, because verify needs test images too."""

from __future__ import annotations

import os

from export_kit.datasets.base import Dataset, Split
from export_kit.errors import UsageError

DATASETS = ("cifar10", "synthetic")

__all__ = ["DATASETS", "Dataset", "Split", "load_dataset"]


def load_dataset(name: str, data_dir: str | os.PathLike | None = None, *, progress: bool = True,
                 seed: int = 0) -> Dataset:
    """``cifar10`` from disk (see :func:`export_kit.datasets.cifar.load_cifar10`) or the generated set."""
    if name == "cifar10":
        from export_kit.datasets.cifar import load_cifar10

        return load_cifar10(data_dir, progress=progress)
    if name == "synthetic":
        from export_kit.datasets.synthetic import synthetic_dataset

        return synthetic_dataset(seed=seed)
    raise UsageError(f"unknown dataset {name!r}; choose one of: {', '.join(DATASETS)}")
