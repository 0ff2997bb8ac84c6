"""Labelled image sets as plain arrays (uint8, or float32 after a float resize), so every consumer (training,
verify, calibration) shares one form.

A decoded image folder is a memory-mapped file. Pages of a mapping that have been read count in the process's
resident memory until it is unmapped, so passes over a whole split read it through :meth:`Split.rows`, which maps
one chunk at a time and lets it go: verify's memory then does not grow with the number of test images.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING

import numpy as np

if TYPE_CHECKING:
    from export_kit.model.geometry import Geometry


@dataclass
class Split:
    """Images as ``(N, H, W, 3)`` RGB, uint8 as decoded (float32 pixel values when a float resize made them, see
    :mod:`export_kit.model.geometry`), and labels as int64 ``(N,)``."""

    images: np.ndarray
    labels: np.ndarray

    def __len__(self) -> int:
        return len(self.labels)

    def rows(self, start: int, stop: int) -> np.ndarray:
        """Images ``start:stop`` as an array of their own: from a memory-mapped split, through a mapping of those
        rows alone, released when the copy is made."""
        images = self.images
        stop = min(stop, len(images))
        if not isinstance(images, np.memmap) or images.filename is None or stop <= start:
            return np.asarray(images[start:stop])
        row = int(np.prod(images.shape[1:])) * images.dtype.itemsize
        window = np.memmap(images.filename, dtype=images.dtype, mode="r", offset=images.offset + start * row,
                           shape=(stop - start, *images.shape[1:]))
        chunk = np.array(window)
        del window
        return chunk

    def subset(self, per_class: int) -> Split:
        """The first ``per_class`` images of every class, in dataset order (deterministic, balanced)."""
        keep = np.sort(np.concatenate([np.empty(0, np.int64), *(np.flatnonzero(self.labels == c)[:per_class]
                                                              for c in np.unique(self.labels))]))
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

    def resized(self, geometry: Geometry | None) -> Dataset:
        """Both splits through ``geometry`` (resize + crop), for sets decoded whole elsewhere; None keeps them."""
        if geometry is None:
            return self
        train, test = (Split(geometry.apply_arrays(s.images), s.labels) for s in (self.train, self.test))
        return Dataset(train, test, self.classes, self.provenance)
