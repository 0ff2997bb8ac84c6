"""One interface for every runtime: ``run({input name: array}) -> {output name: array}``, validated once here and
implemented per backend; and the registry each runtime file adds itself to.

Runners never time themselves; :mod:`export_kit.benchmark.run` times every backend with the same loop.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from export_kit.errors import UsageError


@dataclass(frozen=True)
class Target:
    """Where an artifact runs: a runtime and a device (for onnxruntime, the execution provider)."""

    runtime: str
    device: str

    def __str__(self) -> str:
        return f"{self.runtime}/{self.device}"


@dataclass(frozen=True)
class TensorSpec:
    """One named input: its per-sample shape (the batch axis is free; so is each axis ``dims`` names) and dtype."""

    name: str
    shape: tuple[int, ...]
    dtype: str = "float32"
    dims: tuple[str | None, ...] = ()

    def fits(self, shape: tuple[int, ...]) -> bool:
        """A per-sample ``shape`` this input takes: every fixed axis at its size."""
        names = self.dims or (None,) * len(self.shape)
        return len(shape) == len(self.shape) and all(n or d == e for d, e, n in zip(shape, self.shape, names,
                                                                                     strict=True))


@dataclass(frozen=True)
class IOSpec:
    """A model's named inputs and outputs, in the order its forward takes and returns them."""

    inputs: tuple[TensorSpec, ...]
    outputs: tuple[str, ...]

    @classmethod
    def single(cls, shape: Sequence[int], input_name: str = "input", output_name: str = "logits") -> IOSpec:
        return cls((TensorSpec(input_name, tuple(int(d) for d in shape)),), (output_name,))


@dataclass
class Runner:
    """Base class: :meth:`run` checks the feed against ``io``; subclasses implement ``_run``."""

    target: Target
    io: IOSpec
    threads: int | None = None
    settings: dict = field(default_factory=dict)
    #: A tuning candidate (``{}``: the runtime's own defaults; else knobs such as ``threads``); None keeps the
    #: per-batch thread heuristic of ``threads``.
    options: dict | None = None

    def run(self, feed: Mapping[str, np.ndarray]) -> dict[str, np.ndarray]:
        """Run one batch given as ``{input name: array}``; every input shares the batch size."""
        if not isinstance(feed, Mapping) or set(feed) != {s.name for s in self.io.inputs}:
            raise UsageError(f"{self.target} expects inputs {[s.name for s in self.io.inputs]}, got "
                             f"{sorted(feed) if isinstance(feed, Mapping) else type(feed).__name__}")
        arrays = [self._checked(spec, feed[spec.name]) for spec in self.io.inputs]
        if len({len(a) for a in arrays}) > 1:
            raise UsageError(f"{self.target} expects one batch size for all inputs, got {[len(a) for a in arrays]}")
        out = self._run([np.ascontiguousarray(a) for a in arrays])
        if len(out) != len(self.io.outputs):
            raise UsageError(f"{self.target} returned {len(out)} outputs; the manifest names {list(self.io.outputs)}")
        return {name: np.asarray(value) for name, value in zip(self.io.outputs, out, strict=True)}

    def run_unchecked(self, arrays: list[np.ndarray]) -> Sequence[np.ndarray]:
        """The runtime call alone, for timing loops once :meth:`run` has accepted the same feed: the feed checks
        cost about 4 us a call, a tenth of this CNN's batch-1 latency, and belong to no runtime."""
        return self._run(arrays)

    def run_one(self, batch: np.ndarray) -> np.ndarray:
        """The first output for a model with one input: what verify and bench feed today."""
        return self.run({self.io.inputs[0].name: batch})[self.io.outputs[0]]

    def _checked(self, spec: TensorSpec, array: Any) -> np.ndarray:
        if not isinstance(array, np.ndarray) or array.dtype != np.dtype(spec.dtype):
            raise UsageError(f"{self.target} expects {spec.name} as a {spec.dtype} numpy array, got "
                             f"{getattr(array, 'dtype', type(array).__name__)}")
        if array.ndim != 1 + len(spec.shape) or not spec.fits(tuple(array.shape[1:])):
            raise UsageError(f"{self.target} expects {spec.name} of shape (batch, "
                             f"{', '.join(map(str, spec.shape))}), got {array.shape}")
        return array

    def synchronize(self) -> None:
        """Block until queued device work is done; a no-op on the CPU."""

    def prepare(self) -> None:
        """Reapply process-wide settings before a timed slice: bench interleaves runners in one process, and
        another runner may have changed them since (torch's thread count is one per process)."""

    def close(self) -> None:
        """Release the session or module."""

    def _run(self, inputs: list[np.ndarray]) -> Sequence[np.ndarray]:
        """Inputs in ``io.inputs`` order; outputs in ``io.outputs`` order."""
        raise NotImplementedError

    def __enter__(self) -> Runner:
        return self

    def __exit__(self, *exc) -> None:
        self.close()


@dataclass(frozen=True)
class OpenRequest:
    """What opening a runner may use: a file (most runtimes) or an in-memory module (``eager``)."""

    target: Target
    io: IOSpec
    path: Path | None = None
    module: Any = None
    threads: int | None = None
    options: dict | None = None


@dataclass(frozen=True)
class Runtime:
    """A runtime as verify, bench and the report see it, registered by the file that implements it.

    ``unavailable(device)`` says why it cannot run here (None when it can); ``runs_code`` marks loaders that
    execute code stored in the file (those need a trusted folder); ``version()`` is recorded with timings.
    """

    name: str
    devices: tuple[str, ...]
    open: Callable[[OpenRequest], Runner]
    unavailable: Callable[[str], str | None]
    version: Callable[[], str | None]
    runs_code: bool = False
    #: Settings ``bench --tune`` tries for (device, batch); the first, ``{}``, is always the runtime's defaults.
    candidates: Callable[[str, int], list[dict]] = lambda device, batch: [{}]


RUNTIMES: dict[str, Runtime] = {}


def register_runtime(runtime: Runtime) -> Runtime:
    if runtime.name in RUNTIMES:
        raise RuntimeError(f"runtime {runtime.name!r} registered twice")
    RUNTIMES[runtime.name] = runtime
    return runtime


def accelerator_of(device: str) -> str:
    """The device class a latency compares within: ``cpu``, or ``cuda`` for every GPU provider (cuda, tensorrt)."""
    return "cpu" if device == "cpu" else "cuda"


def thread_ladder(cores: int) -> list[int]:
    """Thread counts worth trying: 1, 2, 4, ... up to and including every core."""
    ladder, n = [], 1
    while n < cores:
        ladder.append(n)
        n *= 2
    return [*ladder, cores]


def thread_candidates(device: str, batch: int) -> list[dict]:
    """The runtime's defaults first, then thread counts up the ladder; on a GPU the host threads hardly matter,
    so only the defaults."""
    import os

    return [{}] if device != "cpu" else [{}, *({"threads": n} for n in thread_ladder(os.cpu_count() or 1))]


def package_version(distribution: str) -> Callable[[], str | None]:
    """A runtime's ``version``: the installed version of ``distribution``, or None when it is not installed."""

    def version() -> str | None:
        from importlib.metadata import PackageNotFoundError
        from importlib.metadata import version as installed

        try:
            return installed(distribution)
        except PackageNotFoundError:
            return None

    return version


def threads_of(settings: dict) -> int | None:
    """The thread count a runner reported (older reports used runtime-specific keys)."""
    for key in ("threads", "intra_op_threads", "torch_threads"):
        if settings.get(key) is not None:
            return settings[key]
    return None
