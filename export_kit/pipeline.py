"""The whole job behind ``exportkit build``: find the data, get the model (train it, read a checkpoint, or call a
factory), then :func:`export_kit.api.build`. It lives in the library, with every default, so the CLI and Python
callers behave the same; the CLI only parses.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from export_kit import api
from export_kit.benchmark.sampling import SamplingConfig
from export_kit.builder import CHECKPOINT_NAME, GOLDEN_COUNT, prepare_out_dir
from export_kit.errors import DataMismatchError, MixedSizesError, UsageError
from export_kit.exporters import parse_formats
from export_kit.model import sources
from export_kit.model.datasets import Dataset, Split
from export_kit.model.geometry import Geometry
from export_kit.model.io import parse_inputs
from export_kit.model.preprocessing import LAYOUTS, Preprocessing, color_for
from export_kit.report.record import Report
from export_kit.safeio.atomic import stopwatch

#: The training stage is found by name, like any model factory, so the toolkit itself never imports it.
TRAINER = "train.loop:train"
TRAIN_CONFIG = "train.config:TrainConfig"
#: A factory model's input when neither --input-shape nor --input is given.
DEFAULT_IMAGE = "3x224x224"
#: Training images per class used to calibrate static int8 (300 in all for CIFAR-10).
CALIBRATION_PER_CLASS = 30


@dataclass(frozen=True)
class ModelChoice:
    """Where the model comes from: ``factory`` (your own, with optional ``checkpoint`` weights), else
    ``checkpoint`` (an exportkit checkpoint), else training ``arch`` for ``epochs``."""

    factory: str | None = None
    checkpoint: Path | None = None
    input_shape: str | None = None
    classes_file: Path | None = None
    mean: str | None = None
    std: str | None = None
    arch: str = "seed"
    epochs: int | None = None
    allow_factories: tuple[str, ...] = ()
    #: ``--input`` specs (``NAME:DTYPE:batchx...[:LOW..HIGH]``) for a model that takes no images.
    inputs: tuple[str, ...] = ()
    classifier: str | None = None
    #: Photos of any size: the shorter side resized to this many pixels, then centre-cropped to the input's HxW.
    resize: int | None = None
    interpolation: str = "bilinear"
    #: The model takes its three channels in BGR order.
    bgr: bool = False
    #: The resize filter is widened when shrinking (antialiasing), as torchvision's Resize does by default.
    antialias: bool = True
    #: The image input's axis order after the batch: NCHW, or NHWC for a model that takes channels last.
    layout: str = "NCHW"


def load_data(dataset: str | None, data_dir: Path | None, geometry: Geometry | None = None) -> Dataset:
    from export_kit.model.datasets import load_dataset

    return load_dataset(dataset or "cifar10", data_dir, geometry=geometry)


def train(data, out: Path, *, arch: str = "seed", settings: dict | None = None, resume: Path | None = None,
          stop_after: int | None = None) -> dict:
    """Run the trainer found by name; returns {} in the helper processes of a distributed run."""
    if not len(data.train):
        raise UsageError(f"training needs training images, and {data.provenance.get('path')} has no train/ "
                         "folder; pass --checkpoint or --model, or add train/<class>/ images")
    from export_kit.model.spec import load_factory

    config = load_factory(TRAIN_CONFIG).for_arch(arch, **(settings or {}))
    return load_factory(TRAINER)(data, config, out, resume=resume, stop_after=stop_after) or {}


#: A final test accuracy this far below the run's best epoch is reported: the last epoch is what ships.
ACCURACY_FALL = 0.05


def training_warnings(history: Sequence[dict]) -> list[str]:
    """What a finished run should not end silently with: a last epoch whose test accuracy fell well below the
    best one (a learning rate too high for the data, or a chaotic short run)."""
    measured = [(row["epoch"], row["test_accuracy"]) for row in history if row.get("test_accuracy") is not None]
    if len(measured) < 2:
        return []
    best_epoch, best = max(measured, key=lambda m: m[1])
    last_epoch, last = measured[-1]
    if best - last <= ACCURACY_FALL:
        return []
    return [f"test accuracy fell from {best:.4f} (epoch {best_epoch}) to {last:.4f} (epoch {last_epoch}); the last "
            "epoch's weights are the ones exported: check the learning rate or the number of epochs"]


def _check_inputs(choice: ModelChoice, formats: Sequence[str] | str | None, wants_data: bool) -> tuple | None:
    """Every value that can be wrong, checked before any data is read or any model trained: (preprocessing,
    image shape) for an image model, (None, input specs) for one described with ``--input``."""
    if isinstance(formats, str):
        parse_formats(formats)
    if not choice.factory:
        if choice.inputs or choice.classifier or choice.resize or choice.bgr or choice.layout != "NCHW":
            raise UsageError("--input, --classifier, --resize, --bgr and --layout describe your own model: give them "
                             "with --model")
        return None
    if not choice.antialias and not choice.resize:
        raise UsageError("--no-antialias changes the resize of photos: give it with --resize")
    if choice.inputs:
        clash = [o for o, v in (("--input-shape", choice.input_shape), ("--mean", choice.mean),
                                ("--std", choice.std), ("--data-dir/--dataset", wants_data),
                                ("--resize", choice.resize), ("--bgr", choice.bgr),
                                ("--layout", choice.layout != "NCHW")) if v]
        if clash:
            raise UsageError(f"--input describes a model that takes no images; {', '.join(clash)} apply to image "
                             "models only (its golden inputs are drawn from each --input's domain)")
        return None, parse_inputs(choice.inputs)
    shape = sources.parse_shape(choice.input_shape or DEFAULT_IMAGE)
    channels = shape[0]
    if choice.bgr and channels != 3:
        raise UsageError(f"--bgr reverses three colour channels; --input-shape has {channels}")
    color = "BGR" if choice.bgr else color_for(channels)
    geometry = (Geometry.for_model(choice.resize, shape[1:], choice.interpolation, color, choice.antialias)
                if choice.resize else None)
    if choice.layout not in LAYOUTS:
        raise UsageError(f"--layout must be {' or '.join(LAYOUTS)}, got {choice.layout!r}")
    prep = Preprocessing(mean=sources.parse_channels(choice.mean or "0", "--mean", channels),
                         std=sources.parse_channels(choice.std or "1", "--std", channels, positive=True),
                         color=color, geometry=geometry, layout=choice.layout)
    return prep, shape


def _source(choice: ModelChoice, parsed: tuple | None, data: Dataset | None, out: Path,
            timings: dict, log: Callable[[str], None]) -> sources.ModelSource:
    if choice.factory and parsed:
        prep, described = parsed
        if prep is None:
            return sources.from_factory(choice.factory, prepare_out_dir(out) / CHECKPOINT_NAME, inputs=described,
                                        classifier=choice.classifier, weights=choice.checkpoint,
                                        classes_file=choice.classes_file)
        if data is not None:
            sources.check_input_shape(described, data.test.images)
        return sources.from_factory(choice.factory, prepare_out_dir(out) / CHECKPOINT_NAME, input_shape=described,
                                    classifier=choice.classifier, weights=choice.checkpoint,
                                    classes_file=choice.classes_file, preprocessing=prep,
                                    data_classes=data.classes if data else None,
                                    data_provenance=data.provenance if data else None)
    checkpoint = choice.checkpoint
    if checkpoint is None:
        checkpoint = prepare_out_dir(out) / CHECKPOINT_NAME
        log(f"build: training the {choice.arch} network into {checkpoint}")
        with stopwatch(timings, "train"):
            metrics = train(data, checkpoint, arch=choice.arch, settings={"epochs": choice.epochs})
        for warning in training_warnings(metrics.get("history", [])):
            log(f"warning: {warning}")
    src = sources.from_checkpoint(checkpoint, choice.allow_factories)
    sources.check_class_count(f"checkpoint {checkpoint}", len(src.classes), data.classes if data else None)
    return src


def build_pipeline(choice: ModelChoice, *, out: Path = Path("artifacts"), formats: Sequence[str] | str | None = None,
                   dataset: str | None = None, data_dir: Path | None = None, bench_batches: Sequence[int] = (1, 32),
                   golden_count: int = GOLDEN_COUNT, bench_config: SamplingConfig | None = None,
                   format_options: Mapping[str, Mapping[str, Any]] | None = None,
                   log: Callable[[str], None] = print) -> Report:
    """Data, model, then export, verify and bench into ``out``. A factory model needs data only when
    ``dataset``/``data_dir`` is given; the other two always read it (CIFAR-10 by default)."""
    wants_data = bool(not choice.factory or dataset or data_dir)
    parsed = _check_inputs(choice, formats, bool(dataset or data_dir))
    timings: dict[str, float] = {}
    geometry = parsed[0].geometry if parsed and parsed[0] else None
    if wants_data:  # said at once: decoding and training take minutes, and a log should show they started
        log(f"build: reading {dataset or 'cifar10'} data" + (f" from {data_dir}" if data_dir else ""))
    with stopwatch(timings, "data"):
        data = load_data(dataset, data_dir, geometry) if wants_data else None
    src = _source(choice, parsed, data, out, timings, log)
    return api.build(src.model, src.example, formats=formats, out=out, classes=src.classes,
                     preprocessing=src.preprocessing, inputs=src.inputs, classifier=src.classifier,
                     test=data.test if data else None,
                     calibration=data.train.subset(CALIBRATION_PER_CLASS) if data and len(data.train) else None,
                     checkpoint=src.checkpoint, model_info=src.info, golden_count=golden_count,
                     bench_batches=bench_batches, bench_config=bench_config, timings=timings,
                     format_options=format_options, log=log)


def test_split_for(folder: Path, dataset: str | None, data_dir: Path | None,
                   log: Callable[[str], None] = print) -> tuple[Split | None, bool]:
    """The test split verify and selftest measure accuracy on: asked for by ``dataset`` or ``data_dir``, or found
    through ``$EXPORTKIT_DATA``, decoded with the resize ``folder``'s manifest records; else None. Also whether it
    is optional (found in the environment, not asked for): optional data that does not fit is skipped with a line,
    asked-for data that does not fit is the user's error."""
    if dataset or data_dir or os.environ.get("EXPORTKIT_DATA"):
        from export_kit.folder.manifest import load_manifest

        prep, optional = load_manifest(folder).preprocessing, not (dataset or data_dir)
        try:
            return load_data(dataset, data_dir, prep.geometry if prep else None).test, optional
        except MixedSizesError as exc:
            if not optional:
                raise DataMismatchError(f"{data_dir or dataset} does not fit this folder, whose model was "
                                               f"built without --resize for images of one size: {exc.sizes}") from None
            log(f"accuracy skipped: $EXPORTKIT_DATA does not fit this folder: images of {exc.sizes}")
            return None, optional
    log("accuracy not checked: no dataset given (pass --data-dir DIR or set EXPORTKIT_DATA)")
    return None, True
