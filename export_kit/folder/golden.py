"""Golden vectors: real test images (or, for a model that takes no images or was built without data, seeded inputs
drawn from each input's domain) with the reference model's outputs, stored in the artifacts folder.

They let an app on a device, or CI on another machine, check an artifact with no dataset and no checkpoint.
The pixels (uint8 as decoded, float32 after a float resize) are kept next to the preprocessed inputs so a change
of the manifest's preprocessing (mean, std, scale) is caught: re-preprocessing the pixels must reproduce the
stored inputs.
"""

from __future__ import annotations

import zipfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from export_kit.errors import ManifestError
from export_kit.model.axes import GROW
from export_kit.model.io import ModelIO
from export_kit.safeio.atomic import atomic_path
from export_kit.safeio.limits import check_zip, check_zip_entries

GOLDEN_NAME = "golden.npz"
MAX_TEST_IMAGES = 2_000_000
NPY_HEADER_SLACK = 4096
#: The same pixels and logits as plain ``.npy`` files, for apps in other languages: a 10-line header parser reads
#: them, where the ``.npz`` (a zip archive) would need a zip library.
PLAIN_FILES = {"pixels": "golden_pixels.npy", "logits": "golden_logits.npy"}
PLAIN_OUTPUT = "golden_output_{}.npy"


#: Samples stored per size of a dynamic axis (:mod:`export_kit.model.axes`): parity at that size needs few.
AXIS_SAMPLES = 4
#: Most size combinations a folder may store.
MAX_AXIS_SETS = 64


@dataclass
class AxisSet:
    """Golden samples with the named axes at ``sizes`` (the others at their example size)."""

    sizes: dict[str, int]
    inputs: list[np.ndarray]
    outputs: list[np.ndarray]


@dataclass
class Golden:
    images: np.ndarray  # (N, H, W, C) pixels in the model's colour mode, uint8 (float32 after the float resize);
    # empty for a model without images
    inputs: list[np.ndarray]  # per model input, (N, ...) in its dtype: what the reference was fed
    outputs: list[np.ndarray]  # per model output, float32 (N, ...), from the eager reference
    labels: np.ndarray  # int64 (N,)
    test_predictions: np.ndarray  # int64: the reference's top-1 on the whole test split (may be empty)
    test_labels: np.ndarray  # int64: labels of that split, to detect a different dataset at verify time
    classifier: int | None = 0  # which output holds the classifier's logits; None: a model verified by parity
    axes: list[AxisSet] = field(default_factory=list)  # the spread of sizes of each dynamic axis

    @property
    def headline(self) -> int:
        """The classifier output, or the first output for a model without one."""
        return 0 if self.classifier is None else self.classifier

    @property
    def logits(self) -> np.ndarray:
        return self.outputs[self.headline]

    def save(self, path: Path) -> None:
        arrays = {"images": self.images, "labels": self.labels, "test_predictions": self.test_predictions,
                  "test_labels": self.test_labels,
                  **{f"input_{i}": x for i, x in enumerate(self.inputs)},
                  **{f"output_{i}": y for i, y in enumerate(self.outputs)}}
        if self.axes:
            names = sorted(self.axes[0].sizes)
            arrays["axes_sizes"] = np.array([[a.sizes[n] for n in names] for a in self.axes], np.int64)
            for j, a in enumerate(self.axes):
                arrays.update({f"axes_{j}_input_{i}": x for i, x in enumerate(a.inputs)})
                arrays.update({f"axes_{j}_output_{k}": y for k, y in enumerate(a.outputs)})
        with atomic_path(path) as tmp, open(tmp, "wb") as fh:
            np.savez(fh, **arrays)

    def save_plain(self, folder: Path) -> dict[str, Any]:
        """Write NHWC pixels and float32 classifier logits as ``.npy`` and, for a model with several
        outputs, every output in order (``outputs``); return their paths relative to ``folder``."""
        files: dict[str, Any] = dict(PLAIN_FILES)
        arrays = [(PLAIN_FILES["pixels"], self.images), (PLAIN_FILES["logits"], self.logits)]
        if len(self.outputs) > 1 or self.classifier is None:  # the consumers then check every output by name
            files["outputs"] = [PLAIN_OUTPUT.format(k) for k in range(len(self.outputs))]
            arrays += list(zip(files["outputs"], self.outputs, strict=True))
        for rel, array in arrays:
            with atomic_path(Path(folder) / rel) as tmp, open(tmp, "wb") as fh:
                np.save(fh, np.ascontiguousarray(array))
        return files

    @classmethod
    def load(cls, path: Path, count: int, io: ModelIO, image_shape: tuple[int, ...] | None) -> Golden:
        """Read the vectors the manifest declares: entry sizes are checked before anything is inflated, and
        the arrays' shapes after. ``image_shape`` is (H, W, C) for a model fed images, else None."""
        check_zip(path)  # the bytes the file really holds, whatever the manifest declares (np.savez stores)
        check_zip_entries(path, entry_limits(count, io, image_shape))
        try:
            with np.load(path, allow_pickle=False) as npz:
                golden = cls(npz["images"], [npz[f"input_{i}"] for i in range(len(io.inputs))],
                             [npz[f"output_{i}"] for i in range(len(io.outputs))], npz["labels"],
                             npz["test_predictions"], npz["test_labels"], io.classifier,
                             _axis_sets(npz, io) if io.axes else [])
        except (OSError, ValueError, KeyError, EOFError, zipfile.BadZipFile) as exc:
            raise ManifestError(f"{path} is not a readable golden-vector file ({exc}); rebuild the folder") from None
        expected = {**{f"input {s.name}": ((count, *s.shape), golden.inputs[i]) for i, s in enumerate(io.inputs)},
                    **{f"output {s.name}": ((count, *s.shape), golden.outputs[i]) for i, s in enumerate(io.outputs)},
                    "labels": ((count,), golden.labels)}
        for key, (shape, array) in expected.items():
            if array.shape != shape:
                raise ManifestError(f"{path}: {key} has shape {array.shape}, the manifest declares {shape}; "
                                    "rebuild the folder")
        return golden


def _axis_sets(npz, io: ModelIO) -> list[AxisSet]:
    """The stored spread of axis sizes, each input's shape checked against the sizes it claims."""
    names, table = sorted(io.axes), npz["axes_sizes"]
    if table.ndim != 2 or table.shape[1] != len(names) or not 0 < len(table) <= MAX_AXIS_SETS:
        raise ValueError(f"axes_sizes has shape {table.shape}, expected (sets, {len(names)})")
    sets = []
    for j, row in enumerate(table):
        sizes = {n: int(v) for n, v in zip(names, row, strict=True)}
        bad = [n for n in names if not io.axes[n].bounds[0] <= sizes[n] <= io.axes[n].bounds[1]]
        if bad:
            raise ValueError(f"axis {bad[0]} size {sizes[bad[0]]} is outside its exported range")
        inputs = [npz[f"axes_{j}_input_{i}"] for i in range(len(io.inputs))]
        for spec, x in zip(io.inputs, inputs, strict=True):
            if x.shape != (AXIS_SAMPLES, *spec.sized(sizes)):
                raise ValueError(f"axes set {j} input {spec.name} has shape {x.shape}")
        sets.append(AxisSet(sizes, inputs, [npz[f"axes_{j}_output_{k}"] for k in range(len(io.outputs))]))
    return sets


def entry_limits(count: int, io: ModelIO, image_shape: tuple[int, ...] | None) -> dict[str, int]:
    """Largest honest size of each ``.npz`` entry, from the manifest's declared count and shapes."""
    # pixels are uint8, or float32 after the float resize: 4 bytes each at most
    sizes = {"images": count * int(np.prod(image_shape)) * 4 if image_shape else 0, "labels": count * 8,
             "test_predictions": MAX_TEST_IMAGES * 8, "test_labels": MAX_TEST_IMAGES * 8}
    for i, spec in enumerate(io.inputs):
        sizes[f"input_{i}"] = count * int(np.prod(spec.shape)) * np.dtype(spec.dtype).itemsize
    for i, out in enumerate(io.outputs):
        sizes[f"output_{i}"] = count * int(np.prod(out.shape)) * 4
    if io.axes:
        sizes["axes_sizes"] = MAX_AXIS_SETS * len(io.axes) * 8
        largest = {n: a.bounds[1] for n, a in io.axes.items()}
        growth = GROW ** (2 * len(io.axes))  # an output may grow with an axis, even as its square (attention)
        for j in range(MAX_AXIS_SETS):
            for i, spec in enumerate(io.inputs):
                sizes[f"axes_{j}_input_{i}"] = (AXIS_SAMPLES * int(np.prod(spec.sized(largest)))
                                                * np.dtype(spec.dtype).itemsize)
            for k, out in enumerate(io.outputs):
                sizes[f"axes_{j}_output_{k}"] = AXIS_SAMPLES * int(np.prod(out.shape)) * 4 * growth
    return {f"{k}.npy": v + NPY_HEADER_SLACK for k, v in sizes.items()}


def repeated(array: np.ndarray, at_least: int) -> np.ndarray:
    """``array`` repeated whole until it holds at least ``at_least`` rows (unchanged when it already does): small
    golden sets still fill a full batch, each image counted equally often."""
    return np.concatenate([array] * -(-at_least // len(array)))
