"""Labelled image sets as plain uint8 arrays, so every consumer (training, verify, calibration) shares one form."""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np


@dataclass
class Split:
    """Images as uint8 ``(N, H, W, 3)`` RGB and labels as int64 ``(N,)``."""

    images: np.ndarray
    labels: np.ndarray

    def __len__(self) -> int:
        return len(self.labels)

    def subset(self, per_class: int) -> Split:
        """The first ``per_class`` images of every class, in dataset order (deterministic, balanced)."""
        keep = np.sort(np.concatenate([np.flatnonzero(self.labels == c)[:per_class]
                                       for c in np.unique(self.labels)]))
        return Split(self.images[keep], self.labels[keep])

    def balanced(self, count: int) -> Split:
        """About ``count`` images spread evenly over the classes (at least one of each)."""
        return self.subset(max(1, count // len(np.unique(self.labels))))


@dataclass
class Dataset:
    train: Split
    test: Split
    classes: list[str]
    provenance: dict = field(default_factory=dict)
