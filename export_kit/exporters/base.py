"""What every exporter gets and gives back, and the registry that makes ``--formats`` a lookup."""

from __future__ import annotations

import warnings
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, ClassVar

from export_kit.errors import ExportError, UsageError, first_line
from export_kit.folder.manifest import Artifact
from export_kit.folder.precision import DEFAULT_TOLERANCES
from export_kit.model.io import ModelIO


@dataclass
class ExportRequest:
    """A model in eval mode, an example of batch 1 (one tensor, or a tuple with one per input), and where to write.

    ``io`` names the inputs and outputs (None: one input ``input``, one output ``logits``). ``calibration``
    (never test images) is None when the build had no training data. ``metadata`` holds strings (preprocessing,
    class names) that formats able to carry them embed in the file.
    """

    model: Any
    example: Any
    out_dir: Path
    io: ModelIO | None = None
    metadata: dict[str, str] = field(default_factory=dict)
    calibration: Any = None  # float32 model inputs from training images, for formats that calibrate
    #: Per format name, the options its exporter accepted (:meth:`Exporter.check_options`); generic code carries
    #: them without knowing what they mean.
    options: dict[str, dict[str, Any]] = field(default_factory=dict)

    def options_for(self, format_name: str) -> dict[str, Any]:
        return self.options.get(format_name, {})

    @property
    def args(self) -> tuple:
        """The example as the positional arguments of ``forward``."""
        return tuple(self.example) if isinstance(self.example, (tuple, list)) else (self.example,)

    @property
    def input_names(self) -> list[str]:
        return [i.name for i in self.io.inputs] if self.io else ["input"]

    @property
    def output_names(self) -> list[str]:
        return [o.name for o in self.io.outputs] if self.io else ["logits"]

    @property
    def axes(self) -> list[str]:
        """The named dynamic axes besides the batch (:mod:`export_kit.model.axes`)."""
        return list(self.io.axes) if self.io else []

    def dynamic_shapes(self) -> tuple[dict, ...]:
        """torch.export's ``dynamic_shapes`` for :attr:`args`: the batch axis of every input, and each named axis
        over its bounds, one ``Dim`` per name, so inputs that share an axis are told they do."""
        import torch

        from export_kit.safeio.limits import MAX_BATCH

        batch = torch.export.Dim("batch", min=1, max=MAX_BATCH)
        if self.io is None:
            return tuple({0: batch} for _ in self.args)
        dims = {name: torch.export.Dim(name, min=axis.bounds[0], max=axis.bounds[1])
                for name, axis in self.io.axes.items()}
        return tuple({0: batch, **{k + 1: dims[n] for k, n in enumerate(spec.axis_names) if n}}
                     for spec in self.io.inputs)

    def refuse_dynamic_axes(self, format_name: str) -> None:
        """For formats exported at fixed shapes: a model with a dynamic axis is refused, with the reason."""
        if self.axes:
            raise ExportError(f"{format_name} is exported with fixed shapes; this model has the dynamic axis "
                              f"{', '.join(self.axes)}")


class Exporter:
    """Subclasses set ``name`` and ``precision`` and implement :meth:`export`."""

    name: ClassVar[str]
    precision: ClassVar[str]
    summary: ClassVar[str]

    @classmethod
    def precision_of(cls, artifact: Artifact) -> str:
        """The precision class this format's ``artifact`` is made in: ``precision``, unless one format writes
        artifacts of several (OpenVINO's default-precision row)."""
        return cls.precision

    @classmethod
    def check_options(cls, given: Mapping[str, Any]) -> dict[str, Any]:
        """The options this format takes, validated: a format owns its options, so build, the pipeline and the
        request only carry them. The default takes none."""
        if given:
            raise UsageError(f"format {cls.name} takes no options (given: {', '.join(sorted(given))})")
        return {}

    def export(self, request: ExportRequest) -> list[Artifact]:
        raise NotImplementedError


def check_format_options(formats: Sequence[str], given: Mapping[str, Mapping[str, Any]] | None
                         ) -> dict[str, dict[str, Any]]:
    """Each format's options, validated by its exporter; options for a format not being built are refused."""
    checked = {}
    for name, values in (given or {}).items():
        if name not in formats:
            raise UsageError(f"options for {name} ({', '.join(sorted(values))}) make sense only when it is built; "
                             f"add {name} to --formats")
        checked[name] = EXPORTERS[name].check_options(values)
    return checked


EXPORTERS: dict[str, type[Exporter]] = {}


def register(name: str) -> Callable[[type[Exporter]], type[Exporter]]:
    """Add a format. Its precision selects its tolerance class, so one without a class is refused here rather
    than judged silently by another class's bounds."""

    def wrap(cls: type[Exporter]) -> type[Exporter]:
        if name in EXPORTERS:
            raise RuntimeError(f"format {name!r} registered twice")
        if getattr(cls, "precision", None) not in DEFAULT_TOLERANCES:
            raise RuntimeError(f"format {name!r} declares precision {getattr(cls, 'precision', None)!r}, which has "
                               f"no tolerance class; add one to DEFAULT_TOLERANCES ({', '.join(DEFAULT_TOLERANCES)})")
        cls.name = name
        EXPORTERS[name] = cls
        return cls

    return wrap


def parse_formats(text: str) -> list[str]:
    """``"onnx,int8"`` -> ``["onnx", "int8"]``, refusing empty, duplicate and unknown names with the valid list."""
    names = [n.strip() for n in text.split(",")]
    valid = ", ".join(sorted(EXPORTERS))
    if not text.strip() or any(not n for n in names):
        raise UsageError(f"--formats needs a comma-separated list of format names, got {text!r}; valid: {valid}")
    duplicates = sorted({n for n in names if names.count(n) > 1})
    if duplicates:
        raise UsageError(f"--formats names {', '.join(duplicates)} more than once")
    unknown = [n for n in names if n not in EXPORTERS]
    if unknown:
        raise UsageError(f"unknown format(s) {', '.join(unknown)}; valid formats: {valid}")
    return names


@contextmanager
def recorded_warnings(into: list[str]) -> Iterator[None]:
    """Collect warnings (deprecations included) into ``into`` and still show them: record, never silence."""
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        yield
    for item in caught:
        line = first_line(item.message)  # the recorded message is an instance of its category
        if line not in into:
            into.append(line)
        warnings.warn_explicit(item.message, item.category, item.filename, item.lineno)
