"""Where the model of a build comes from: an exportkit checkpoint, or any ``package.module:factory``.

Either way the result is the same bundle (model, example input, preprocessing, class names) plus a
self-describing checkpoint in the artifacts folder, so verify and bench can rebuild the eager reference.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from export_kit.errors import CheckpointError, ManifestError, UsageError, first_line
from export_kit.model.io import InputSpec, ModelIO, describe, examples
from export_kit.model.outputs import NO_CLASSIFIER
from export_kit.model.preprocessing import COLORS, Preprocessing
from export_kit.model.spec import call_factory, load_checkpoint, safe_load, save_checkpoint
from export_kit.safeio.limits import check_sample_shape


@dataclass
class ModelSource:
    """A model and how to feed it: an example batch (an image batch, or one tensor per input), its preprocessing
    (None for a model that takes no images), its input specs when given rather than inferred, and its classifier
    output's name when it returns several."""

    model: Any
    example: Any
    preprocessing: Preprocessing | None
    classes: list[str]
    checkpoint: Path
    info: dict = field(default_factory=dict)
    inputs: tuple[InputSpec, ...] | None = None
    classifier: str | None = None


def parse_shape(text: str) -> tuple[int, int, int]:
    """``"3x224x224"`` -> ``(3, 224, 224)``; exactly three positive integers, 3 channels (RGB) or 1 (grayscale),
    and a size that fits in memory."""
    try:
        dims = tuple(int(d) for d in text.lower().split("x"))
    except ValueError:
        dims = ()
    if len(dims) != 3 or min(dims) <= 0:
        raise UsageError(f"--input-shape takes CxHxW, e.g. 3x224x224 or 1x28x28; got {text!r}")
    if dims[0] not in COLORS.values():
        raise UsageError(f"--input-shape must have 3 channels (RGB) or 1 (grayscale), got {dims[0]}")
    check_sample_shape(dims)
    return dims  # type: ignore[return-value]


def parse_channels(text: str, option: str, channels: int, positive: bool = False) -> tuple[float, ...]:
    """One finite number per channel, or one for all of them; ``positive`` for divisors such as --std."""
    try:
        values = tuple(float(v) for v in text.split(","))
    except ValueError:
        values = ()
    if len(values) not in (1, channels) or not all(math.isfinite(v) for v in values):
        raise UsageError(f"{option} takes one finite number, or {channels} comma-separated (one per channel), "
                         f"got {text!r}")
    if positive and min(values) <= 0:
        raise UsageError(f"{option} values divide the pixels, so they must be positive; got {text!r}")
    return values * channels if len(values) == 1 else values


def read_classes(path: Path | None, count: int) -> list[str]:
    """One class name per line; without a file, ``class0`` ... so every output still has a name."""
    if path is None:
        return [f"class{i}" for i in range(count)]
    try:
        names = [line.strip() for line in Path(path).read_text(encoding="utf-8").splitlines() if line.strip()]
    except (OSError, UnicodeDecodeError) as exc:
        raise UsageError(f"--classes {path} cannot be read: {exc}") from None
    if len(names) != count:
        raise UsageError(f"--classes {path} has {len(names)} names but the model has {count} outputs")
    return names


def from_checkpoint(path: Path, factories: tuple[str, ...] = ()) -> ModelSource:
    """The model a checkpoint describes; it may name only the training stage's factories and ``factories``."""
    import torch

    model, meta = load_checkpoint(path, factories)
    info = {"factory": meta["factory"], "arch": meta.get("arch"), "test_accuracy": meta.get("metrics", {}).get(
        "test_accuracy"), "data": meta.get("data", {}), "input_shape": meta["input_shape"]}
    io = None
    if meta.get("io"):
        try:
            io = ModelIO.from_dict(meta["io"])
        except (KeyError, TypeError, ValueError, ManifestError) as exc:
            raise CheckpointError(f"{path} describes its inputs and outputs wrongly: {exc}") from None
    # the classifier the checkpoint was built with (none included), never a new guess
    classifier = None if io is None else NO_CLASSIFIER if io.classifier is None else io.outputs[io.classifier].name
    if meta.get("preprocessing") is None and io is not None:  # a model that takes no images
        return ModelSource(model, examples(io.inputs), None, list(meta["classes"]), Path(path), info, io.inputs,
                           classifier)
    return ModelSource(model, torch.zeros(1, *meta["input_shape"]), Preprocessing.from_dict(meta["preprocessing"]),
                       list(meta["classes"]), Path(path), info, classifier=classifier)


def _load_weights(model, weights: Path) -> None:
    """Accept a plain state_dict or an exportkit checkpoint, read by the one safe loader."""
    if not Path(weights).is_file():
        raise CheckpointError(f"weights file {weights} does not exist")
    state = safe_load(Path(weights))
    if isinstance(state, dict) and "state_dict" in state:
        state = state["state_dict"]
    try:
        model.load_state_dict(state)
    except (RuntimeError, TypeError, AttributeError) as exc:
        detail = next((ln.strip() for ln in str(exc).splitlines()[1:] if ln.strip()), first_line(exc))
        raise CheckpointError(f"{weights} does not fit the model: {detail}") from None


def check_input_shape(input_shape: tuple[int, int, int], images) -> None:
    """The data's images must be what the model takes (uint8 HWC against CxHxW; RGB images feed a grayscale
    model through the conversion), before anything is exported: otherwise every row fails later with the same
    shape error."""
    problem = image_misfit(input_shape, images.shape[1:])
    if problem:
        raise UsageError(f"{problem}: pass --input-shape {images.shape[3]}x{images.shape[1]}x{images.shape[2]} "
                         "or resize the images")


def image_misfit(input_shape: tuple[int, ...], image_shape: tuple[int, ...]) -> str | None:
    """Why uint8 ``(H, W, C)`` images cannot feed a ``(C, H, W)`` input, or None when they can."""
    height, width, channels = image_shape
    if (height, width) == tuple(input_shape[1:]) and channels in (input_shape[0], 3):
        return None
    return (f"the data's images are {channels}x{height}x{width} but the model takes "
            f"{'x'.join(map(str, input_shape))}")


def check_class_count(model: str, outputs: int, data_classes: list[str] | None) -> None:
    """A model whose output count differs from the data's class count would be scored against the wrong labels
    (accuracy near 0 with every check green): refuse it before anything is exported."""
    if data_classes is not None and outputs != len(data_classes):
        shown = ", ".join(data_classes[:6]) + (", ..." if len(data_classes) > 6 else "")
        raise UsageError(f"{model} gives {outputs} outputs but the data has {len(data_classes)} classes ({shown}); "
                         "use a model with one output per class folder")


def from_factory(spec: str, target: Path, *, input_shape: tuple[int, int, int] | None = None,
                 inputs: tuple[InputSpec, ...] | None = None, classifier: str | None = None,
                 weights: Path | None = None, classes_file: Path | None = None,
                 preprocessing: Preprocessing | None = None, data_classes: list[str] | None = None,
                 data_provenance: dict | None = None) -> ModelSource:
    """Instantiate ``spec``, load ``weights`` if given, and write a checkpoint naming the factory to ``target``.
    The model takes images of ``input_shape`` through ``preprocessing``, or the ``inputs`` described;
    ``data_provenance`` (where the data came from, what was skipped) goes into the checkpoint and the report."""
    import torch

    model = call_factory(spec)
    if weights is not None:
        _load_weights(model, weights)
    model.eval()
    example = examples(inputs) if inputs else torch.zeros(1, *preprocessing.tensor_shape(input_shape))
    try:
        io, preprocessing = describe(model, example, preprocessing if not inputs else None, inputs, classifier)
    except UsageError as exc:
        shapes = [tuple(t.shape) for t in (example if inputs else (example,))]
        raise UsageError(f"{spec} on an example of shape(s) {shapes}: {exc}; check "
                         f"{'--input' if inputs else '--input-shape'}") from None
    if io.classifier is None:  # parity alone: no class names, and the data's labels go unused
        data_classes = None
    check_class_count(spec, io.classes, data_classes)
    classes = read_classes(classes_file, io.classes)
    if data_classes is not None:
        if classes_file is not None and classes != data_classes:
            raise UsageError(f"--classes {classes_file} lists {classes} but the data's class folders, in label "
                             f"order, are {data_classes}; the labels follow the folders, so drop --classes or "
                             "list the folders in that order")
        classes = list(data_classes)
    first = list(io.inputs[0].shape)
    info = {"factory": spec, "input_shape": first, "weights": str(weights) if weights else "random",
            "data": dict(data_provenance or {}), **({"inputs": [i.to_dict() for i in io.inputs]} if inputs else {})}
    save_checkpoint(target, model, factory=spec, kwargs={}, meta={
        "classes": classes, "preprocessing": preprocessing.to_dict() if preprocessing else None,
        "input_shape": first, "io": io.to_dict(), "metrics": {}, "data": dict(data_provenance or {})})
    return ModelSource(model, example, preprocessing, classes, target, info, inputs, classifier)
