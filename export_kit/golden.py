"""Golden vectors: real test images with the reference model's logits, stored in the artifacts folder.

They let an app on a device, or CI on another machine, check an artifact with no dataset and no checkpoint.
The uint8 pixels are kept next to the preprocessed inputs so a change of the manifest's preprocessing (mean,
std, scale) is caught: re-preprocessing the pixels must reproduce the stored inputs.
"""

from __future__ import annotations

import zipfile
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from export_kit.errors import ManifestError
from export_kit.fileio import atomic_path
from export_kit.limits import check_zip_entries

GOLDEN_NAME = "golden.npz"
MAX_GOLDEN = 100_000
MAX_TEST_IMAGES = 2_000_000
NPY_HEADER_SLACK = 4096
#: The same pixels and logits as plain ``.npy`` files, for apps in other languages: a 10-line header parser reads
#: them, where the ``.npz`` (a zip archive) would need a zip library.
PLAIN_FILES = {"pixels": "golden_pixels.npy", "logits": "golden_logits.npy"}


@dataclass
class Golden:
    images: np.ndarray  # uint8 (N, H, W, C): pixels in the model's colour mode (RGB or L)
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
    def load(cls, path: Path, count: int, sample_shape: tuple[int, ...], classes: int) -> Golden:
        """Read the vectors the manifest declares: entry sizes are checked before anything is inflated, and
        the arrays' shapes after."""
        check_zip_entries(path, entry_limits(count, sample_shape, classes))
        try:
            with np.load(path, allow_pickle=False) as npz:
                golden = cls(**{k: npz[k] for k in cls.__dataclass_fields__})
        except (OSError, ValueError, KeyError, EOFError, zipfile.BadZipFile) as exc:
            raise ManifestError(f"{path} is not a readable golden-vector file ({exc}); rebuild the folder") from None
        expected = {"inputs": (count, *sample_shape), "logits": (count, classes), "labels": (count,)}
        for key, shape in expected.items():
            if getattr(golden, key).shape != shape:
                raise ManifestError(f"{path}: {key} has shape {getattr(golden, key).shape}, the manifest declares "
                                    f"{shape}; rebuild the folder")
        return golden


def entry_limits(count: int, sample_shape: tuple[int, ...], classes: int) -> dict[str, int]:
    """Largest honest size of each ``.npz`` entry, from the manifest's declared count and shapes."""
    sample = int(np.prod(sample_shape))
    sizes = {"images": count * sample, "inputs": count * sample * 4, "logits": count * classes * 4,
             "labels": count * 8, "test_predictions": MAX_TEST_IMAGES * 8, "test_labels": MAX_TEST_IMAGES * 8}
    return {f"{k}.npy": v + NPY_HEADER_SLACK for k, v in sizes.items()}


def repeated(array: np.ndarray, at_least: int) -> np.ndarray:
    """``array`` repeated whole until it holds at least ``at_least`` rows (unchanged when it already does): small
    golden sets still fill a full batch, each image counted equally often."""
    return np.concatenate([array] * -(-at_least // len(array)))
