"""What a model takes and gives: named inputs with a dtype, a shape whose first axis is the batch, and the value
domain golden inputs are drawn from; named outputs, one of them the classifier whose logits accuracy is judged on.

Images are the common case (one float32 ``input`` fed by the manifest's preprocessing, one ``logits`` output), but
audio, token ids, several inputs and several outputs are described the same way, on the command line
(``--input ids:int64:batchx128:0..1000``) or inferred from example tensors in the Python API.
"""

from __future__ import annotations

import math
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from export_kit.errors import ManifestError, UsageError, first_line
from export_kit.model.axes import Axis, collect, parse_dim
from export_kit.model.outputs import BATCH, OutputSpec, output_specs
from export_kit.model.preprocessing import Preprocessing
from export_kit.safeio.limits import check_sample_shape

#: Input dtypes exportkit can generate, feed and export.
DTYPES = ("float32", "float16", "int64", "int32", "bool")
INTEGER = ("int64", "int32")
#: The domains each dtype can hold (integers: the half-open range numpy draws from; floats: finite values).
DOMAIN_LIMITS = {"int64": (-(2.0 ** 63), 2.0 ** 63 - 1024), "int32": (-(2.0 ** 31), 2.0 ** 31 - 1),
                 "float32": (-3.4e38, 3.4e38), "float16": (-65504.0, 65504.0), "bool": (0.0, 2.0)}
#: Drawn from when an input names no domain: floats in [-1, 1); bool is always {False, True}.
DEFAULT_FLOAT_DOMAIN = (-1.0, 1.0)


@dataclass(frozen=True)
class InputSpec:
    """One input. ``shape`` is per sample (after the batch axis), at the example size of any dynamic axis;
    ``dims`` names those axes (None: a fixed size; empty: all fixed, see :mod:`export_kit.model.axes`). Golden values
    are drawn uniformly from ``[low, high)`` (integers: ``low`` to ``high - 1``)."""

    name: str
    shape: tuple[int, ...]
    dtype: str = "float32"
    low: float = DEFAULT_FLOAT_DOMAIN[0]
    high: float = DEFAULT_FLOAT_DOMAIN[1]
    dims: tuple[str | None, ...] = ()

    @property
    def axis_names(self) -> tuple[str | None, ...]:
        return self.dims or (None,) * len(self.shape)

    def sized(self, sizes: Mapping[str, int]) -> tuple[int, ...]:
        """The per-sample shape with each named axis at ``sizes[name]`` (its example size when absent)."""
        return tuple(sizes.get(n, d) if n else d for d, n in zip(self.shape, self.axis_names, strict=True))

    def to_dict(self) -> dict:
        data = {"name": self.name, "shape": [BATCH, *(n or d for d, n in zip(self.shape, self.axis_names,
                                                                             strict=True))],
                "dtype": self.dtype, "domain": [self.low, self.high]}
        return {**data, "example_shape": [BATCH, *self.shape]} if any(self.axis_names) else data

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> InputSpec:
        low, high = data.get("domain", DEFAULT_FLOAT_DOMAIN)
        dims = tuple(d if isinstance(d, str) else None for d in data["shape"][1:])
        example = data.get("example_shape", data["shape"]) if any(dims) else data["shape"]
        spec = cls(str(data["name"]), tuple(int(d) for d in example[1:]), str(data["dtype"]), float(low),
                   float(high), dims if any(dims) else ())
        spec.check(ManifestError)
        return spec

    def check(self, error: type[Exception] = UsageError) -> None:
        if self.dtype not in DTYPES:
            raise error(f"input {self.name!r} has dtype {self.dtype!r}; exportkit feeds {', '.join(DTYPES)}")
        if len(self.axis_names) != len(self.shape):
            raise error(f"input {self.name!r} names {len(self.dims)} axes for a shape of {len(self.shape)}")
        try:
            largest = {n: a.bounds[1] for n, a in collect([(self.shape, self.axis_names)]).items()}
        except ValueError as exc:
            raise error(f"input {self.name!r}: {exc}") from None
        check_sample_shape(self.shape, f"input {self.name!r} shape", error)
        check_sample_shape(self.sized(largest), f"input {self.name!r} shape at its largest", error)
        if not (math.isfinite(self.low) and math.isfinite(self.high) and self.low < self.high):
            raise error(f"input {self.name!r} domain {self.low:g}..{self.high:g} must be finite with low < high")
        if self.dtype in INTEGER and (self.low != int(self.low) or self.high != int(self.high)):
            raise error(f"input {self.name!r} is {self.dtype}, so its domain needs whole numbers, got "
                        f"{self.low:g}..{self.high:g}")
        # the values must be representable in the dtype, or drawing them fails (or wraps) in numpy
        low, high = DOMAIN_LIMITS.get(self.dtype, (-math.inf, math.inf))
        if not low <= self.low < self.high <= high:
            raise error(f"input {self.name!r} domain {self.low:g}..{self.high:g} does not fit {self.dtype} "
                        f"({low:g}..{high:g})")

    def generate(self, count: int, rng: np.random.Generator, sizes: Mapping[str, int] | None = None) -> np.ndarray:
        """``count`` samples drawn from the domain, in the input's dtype, with named axes at ``sizes``."""
        size = (count, *self.sized(sizes or {}))
        if self.dtype == "bool":
            return rng.integers(0, 2, size).astype(bool)
        if self.dtype in INTEGER:
            return rng.integers(int(self.low), int(self.high), size).astype(self.dtype)
        return rng.uniform(self.low, self.high, size).astype(self.dtype)


@dataclass(frozen=True)
class ModelIO:
    """A model's inputs and outputs in the order its forward takes and returns them."""

    inputs: tuple[InputSpec, ...]
    outputs: tuple[OutputSpec, ...]

    def __post_init__(self) -> None:
        if sum(o.classifier for o in self.outputs) > 1:
            raise ValueError(f"at most one output can be the classifier, got {[o.name for o in self.outputs]}")

    @property
    def classifier(self) -> int | None:
        """The classifier output's index, or None for a model verified by parity alone (segmentation, detection
        heads, embeddings)."""
        return next((i for i, o in enumerate(self.outputs) if o.classifier), None)

    @property
    def headline(self) -> int:
        """The output whose figures head a verify row and that the manifest's ``output`` describes: the
        classifier, else the first."""
        return 0 if self.classifier is None else self.classifier

    @property
    def classes(self) -> int:
        return 0 if self.classifier is None else self.outputs[self.classifier].shape[0]

    @property
    def axes(self) -> dict[str, Axis]:
        """The dynamic axes besides the batch, by name."""
        return collect([(i.shape, i.axis_names) for i in self.inputs])

    def to_dict(self) -> dict:
        return {"inputs": [i.to_dict() for i in self.inputs], "outputs": [o.to_dict() for o in self.outputs]}

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> ModelIO:
        return cls(tuple(InputSpec.from_dict(i) for i in data["inputs"]),
                   tuple(OutputSpec.from_dict(o) for o in data["outputs"]))


def generate(specs: Sequence[InputSpec], count: int, seed: int = 0,
             sizes: Mapping[str, int] | None = None) -> list[np.ndarray]:
    """``count`` seeded samples per input, each drawn from its domain, named axes at ``sizes``: golden inputs for a
    model without images."""
    rng = np.random.default_rng(seed)
    return [spec.generate(count, rng, sizes) for spec in specs]


def parse_input(text: str) -> InputSpec:
    """``NAME:DTYPE:batchxD1x...[:LOW..HIGH]``, e.g. ``ids:int64:batchx128:0..1000`` or
    ``audio:float32:batchx1x16000:-1..1``; a dimension ``AXIS=SIZE`` is dynamic (``ids:int64:batchxseq=128:0..1000``),
    see :mod:`export_kit.model.axes`."""
    how = "--input takes NAME:DTYPE:batchxD1x...[:LOW..HIGH], e.g. ids:int64:batchx128:0..1000"
    parts = text.strip().split(":")
    if len(parts) not in (3, 4) or not re.fullmatch(r"[A-Za-z_][\w.]*", parts[0]):
        raise UsageError(f"{how}; got {text!r}")
    name, dtype, layout = parts[0], parts[1].lower(), parts[2]
    if not layout.lower().startswith(BATCH + "x"):
        raise UsageError(f"{how}: the shape starts with the batch axis, then at least one size; got {text!r}")
    dims = re.findall(r"x(\d+|[A-Za-z_]\w*=\d+)", layout[len(BATCH):])
    if "".join(f"x{d}" for d in dims) != layout[len(BATCH):]:
        raise UsageError(f"--input {text!r}: a dimension is a size, or AXIS=SIZE for a dynamic one "
                         "(e.g. batchxseq=128)")
    try:
        shape, names = zip(*(parse_dim(d) for d in dims), strict=True)
    except ValueError as exc:
        raise UsageError(f"--input {text!r}: {exc}") from None
    if len(parts) == 3:
        if dtype in INTEGER:
            raise UsageError(f"--input {text!r} is {dtype}: give the range its values come from, e.g. "
                             f"{name}:{dtype}:{parts[2]}:0..1000 (token ids below the vocabulary size)")
        low, high = (0.0, 2.0) if dtype == "bool" else DEFAULT_FLOAT_DOMAIN
    else:
        bounds = parts[3].split("..")
        try:
            low, high = (float(bounds[0]), float(bounds[1])) if len(bounds) == 2 else (math.nan, math.nan)
        except ValueError:
            low = high = math.nan
        if math.isnan(low):
            raise UsageError(f"--input {text!r}: the domain is LOW..HIGH, two numbers, e.g. 0..1000") from None
    spec = InputSpec(name, tuple(shape), dtype, low, high, tuple(names) if any(names) else ())
    spec.check()
    return spec


def examples(specs: Sequence[InputSpec], seed: int = 0) -> tuple:
    """One sample per input drawn from its domain, as torch tensors of batch 1: an example to trace with."""
    import torch

    return tuple(torch.from_numpy(a) for a in generate(specs, 1, seed))


def parse_inputs(texts: Sequence[str]) -> tuple[InputSpec, ...]:
    specs = tuple(parse_input(t) for t in texts)
    names = [s.name for s in specs]
    if len(set(names)) != len(names):
        raise UsageError(f"--input names must be unique, got {names}")
    try:
        collect([(s.shape, s.axis_names) for s in specs])
    except ValueError as exc:
        raise UsageError(f"--input: {exc}") from None
    return specs


def infer_inputs(example: Any) -> tuple[InputSpec, ...]:
    """Specs from example tensors (one tensor, a tuple, or a dict of name -> tensor); domains from their values."""
    import torch

    if isinstance(example, torch.Tensor):
        named = {"input": example}
    elif isinstance(example, Mapping):
        named = dict(example)
    elif isinstance(example, (tuple, list)):
        named = {f"input{i}" if len(example) > 1 else "input": t for i, t in enumerate(example)}
    else:
        raise UsageError(f"example input must be a tensor, a tuple or a dict of tensors, got {type(example).__name__}")
    specs = []
    for name, tensor in named.items():
        if not isinstance(tensor, torch.Tensor) or tensor.ndim < 2:
            raise UsageError(f"example input {name!r} must be a tensor with a batch axis and at least one more")
        dtype = str(tensor.dtype).removeprefix("torch.")
        values = tensor.detach().double()
        low, high = float(values.min()), float(values.max())
        if dtype in INTEGER:
            high += 1  # the half-open domain holds the largest example value
        elif dtype == "bool":
            low, high = 0.0, 2.0
        elif high <= low:
            low, high = DEFAULT_FLOAT_DOMAIN
        spec = InputSpec(str(name), tuple(tensor.shape[1:]), dtype, low, high)
        spec.check()
        specs.append(spec)
    return tuple(specs)


def is_image_batch(example) -> bool:
    """A single float tensor (N, C, H, W) with 1 or 3 channels: what preprocessing feeds."""
    import torch

    return (isinstance(example, torch.Tensor) and example.ndim == 4 and example.shape[1] in (1, 3)
            and example.is_floating_point())


def first_sample(example) -> tuple:
    """Batch 1 of every example input, in ``forward``'s argument order."""
    values = example.values() if isinstance(example, dict) else example
    return tuple(t[:1] for t in values) if isinstance(example, (tuple, list, dict)) else (example[:1],)


def describe(model, example, preprocessing: Preprocessing | None, inputs: Sequence[InputSpec] | None,
             classifier: str | None) -> tuple[ModelIO, Preprocessing | None]:
    """The model's inputs and outputs, and its preprocessing (None when it takes no images). An image batch, or
    any example given ``preprocessing``, is one image input whose domain is the preprocessed pixel range."""
    import torch

    image = preprocessing is not None or (inputs is None and is_image_batch(example))
    if image:
        preprocessing = preprocessing or Preprocessing.identity(int(example.shape[1]))
        low, high = preprocessing.value_range()
        specs = (InputSpec("input", tuple(example.shape[1:]), "float32", low, high),)
    else:
        specs = tuple(inputs) if inputs is not None else infer_inputs(example)
        try:
            collect([(s.shape, s.axis_names) for s in specs])
        except ValueError as exc:
            raise UsageError(f"inputs: {exc}") from None
    with torch.inference_mode():
        try:
            out = model(*first_sample(example))
        except Exception as exc:
            raise UsageError(f"the model fails on its example input: {first_line(exc)}") from None
    return ModelIO(specs, output_specs(out, classifier)), preprocessing
