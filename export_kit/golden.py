"""Golden vectors: real test images with the reference model's logits, stored in the artifacts folder.

They let an app on a device, or CI on another machine, check an artifact with no dataset and no checkpoint.
The uint8 pixels are kept next to the preprocessed inputs so a change of the manifest's preprocessing (mean,
std, scale) is caught: re-preprocessing the pixels must reproduce the stored inputs.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

from export_kit.errors import ManifestError
from export_kit.fileio import atomic_path

GOLDEN_NAME = "golden.npz"
#: The same pixels and logits as plain ``.npy`` files, for apps in other languages: a 10-line header parser reads
#: them, where the ``.npz`` (a zip archive) would need a zip library.
PLAIN_FILES = {"pixels": "golden_pixels.npy", "logits": "golden_logits.npy"}


@dataclass
class Golden:
    images: np.ndarray  # uint8 (N, H, W, 3)
    inputs: np.ndarray  # float32 (N, C, H, W)
    logits: np.ndarray  # float32 (N, classes), from the eager reference
    labels: np.ndarray  # int64 (N,)
    test_predictions: np.ndarray  # int64: the reference's top-1 on the whole test split (may be empty)
    test_labels: np.ndarray  # int64: labels of that split, to detect a different dataset at verify time

    def save(self, path: Path) -> None:
        with atomic_path(path) as tmp, open(tmp, "wb") as fh:
            np.savez(fh, images=self.images, inputs=self.inputs, logits=self.logits, labels=self.labels,
                     test_predictions=self.test_predictions, test_labels=self.test_labels)

    def save_plain(self, folder: Path) -> dict[str, str]:
        """Write uint8 NHWC pixels and float32 logits as ``.npy``; return their paths relative to ``folder``."""
        for key, array in (("pixels", self.images), ("logits", self.logits)):
            with atomic_path(Path(folder) / PLAIN_FILES[key]) as tmp, open(tmp, "wb") as fh:
                np.save(fh, np.ascontiguousarray(array))
        return dict(PLAIN_FILES)

    @classmethod
    def load(cls, path: Path) -> Golden:
        try:
            with np.load(path, allow_pickle=False) as npz:
                return cls(**{k: npz[k] for k in cls.__dataclass_fields__})
        except (OSError, ValueError, KeyError, EOFError) as exc:
            raise ManifestError(f"{path} is not a readable golden-vector file ({exc}); rebuild the folder") from None


def pick_balanced(labels: np.ndarray, count: int) -> np.ndarray:
    """Indexes of ``count`` images spread evenly over the classes, first ones of each class, in dataset order."""
    classes = np.unique(labels)
    per_class = max(1, count // len(classes))
    keep = np.concatenate([np.flatnonzero(labels == c)[:per_class] for c in classes])
    return np.sort(keep)
