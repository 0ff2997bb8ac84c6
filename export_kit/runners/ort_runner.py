"""onnxruntime with an explicit provider list, tuned session options, and no silent fallback to the CPU."""

from __future__ import annotations

import os
from dataclasses import dataclass
from typing import Any

import numpy as np

from export_kit.errors import UnavailableError
from export_kit.runners.base import Runner

#: Short device names used in targets and reports -> onnxruntime execution provider names.
PROVIDERS = {"cpu": "CPUExecutionProvider", "cuda": "CUDAExecutionProvider", "tensorrt": "TensorrtExecutionProvider"}


def provider_unavailable_reason(device: str) -> str | None:
    import onnxruntime as ort

    provider = PROVIDERS.get(device)
    if provider is None:
        return f"unknown onnxruntime device {device!r}; known: {', '.join(PROVIDERS)}"
    available = ort.get_available_providers()
    if provider not in available:
        return f"{provider} is not in this onnxruntime build ({', '.join(available)})"
    return None


@dataclass
class OrtRunner(Runner):
    path: str = ""
    session: Any = None

    def __post_init__(self) -> None:
        import onnxruntime as ort

        if why := provider_unavailable_reason(self.target.device):
            raise UnavailableError(why)
        opts = ort.SessionOptions()
        opts.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
        opts.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
        opts.intra_op_num_threads = self.threads or (os.cpu_count() or 1)
        opts.inter_op_num_threads = 1
        opts.log_severity_level = 3
        provider = PROVIDERS[self.target.device]
        self.session = ort.InferenceSession(self.path, sess_options=opts, providers=[provider])
        if self.session.get_providers()[0] != provider:
            raise UnavailableError(f"onnxruntime fell back to {self.session.get_providers()} instead of {provider}")
        self._input = self.session.get_inputs()[0].name
        self.settings = {"providers": self.session.get_providers(), "intra_op_threads": opts.intra_op_num_threads,
                         "graph_optimization": "ORT_ENABLE_ALL"}

    def _run(self, batch: np.ndarray) -> np.ndarray:
        return self.session.run(None, {self._input: batch})[0]

    def close(self) -> None:
        self.session = None
