"""One interface for every runtime: ``run(batch) -> logits``, validated once here, implemented per backend.

Runners never time themselves; :mod:`export_kit.bench` times every backend with the same loop.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from export_kit.errors import UsageError


@dataclass(frozen=True)
class Target:
    """Where an artifact runs: a runtime and a device (for onnxruntime, the execution provider)."""

    runtime: str
    device: str

    def __str__(self) -> str:
        return f"{self.runtime}/{self.device}"


@dataclass
class Runner:
    """Base class. ``input_shape`` is the per-sample shape (C, H, W); the batch dimension is free."""

    target: Target
    input_shape: tuple[int, ...]
    threads: int | None = None
    settings: dict = field(default_factory=dict)

    def run(self, batch: np.ndarray) -> np.ndarray:
        if not isinstance(batch, np.ndarray) or batch.dtype != np.float32:
            raise UsageError(f"{self.target} expects a float32 numpy array, got "
                             f"{getattr(batch, 'dtype', type(batch).__name__)}")
        if batch.ndim != 1 + len(self.input_shape) or tuple(batch.shape[1:]) != tuple(self.input_shape):
            raise UsageError(f"{self.target} expects input of shape (batch, {', '.join(map(str, self.input_shape))})"
                             f", got {batch.shape}")
        return np.asarray(self._run(np.ascontiguousarray(batch)), dtype=np.float32)

    def synchronize(self) -> None:
        """Block until queued device work is done; a no-op on the CPU."""

    def close(self) -> None:
        """Release the session or module."""

    def _run(self, batch: np.ndarray) -> np.ndarray:
        raise NotImplementedError

    def __enter__(self) -> Runner:
        return self

    def __exit__(self, *exc) -> None:
        self.close()
