"""LiteRT (TensorFlow Lite) interpreter from ``ai-edge-litert``: the runtime Android apps ship, with its XNNPACK
delegate, driven from Python so verify and bench treat ``.tflite`` files like every other format.

The programs are converted for batch 1 (litert-torch could not lower the seed CNN's flatten with a dynamic
batch), so larger batches run one sample at a time, as on a phone. A full-int8 program takes and returns int8
tensors: inputs are quantized and outputs dequantized with the scale and zero point the file declares.
"""

from __future__ import annotations

import importlib.util
from dataclasses import dataclass
from typing import Any

import numpy as np

from export_kit.errors import UnavailableError
from export_kit.runners.base import OpenRequest, Runner, Runtime, package_version, register_runtime, thread_candidates

INSTALL_HINT = "pip install 'exportkit[litert]'"


def litert_unavailable_reason(device: str = "cpu") -> str | None:
    if importlib.util.find_spec("ai_edge_litert") is None:
        return f"the ai-edge-litert package is not installed: {INSTALL_HINT}"
    if device != "cpu":
        return "exportkit runs LiteRT on the CPU (XNNPACK) only"
    return None


def _quantize(x: np.ndarray, detail: dict) -> np.ndarray:
    """Float input to the integer type the program takes (unchanged for a float input)."""
    dtype = detail["dtype"]
    if np.issubdtype(dtype, np.floating):
        return x.astype(dtype)
    scale, zero = detail["quantization"]
    info = np.iinfo(dtype)
    return np.clip(np.round(x / scale) + zero, info.min, info.max).astype(dtype)


def _dequantize(y: np.ndarray, detail: dict) -> np.ndarray:
    if np.issubdtype(y.dtype, np.floating):
        return y.astype(np.float32)
    scale, zero = detail["quantization"]
    return ((y.astype(np.float32) - zero) * scale).astype(np.float32)


@dataclass
class LiteRtRunner(Runner):
    path: str = ""
    interpreter: Any = None

    def __post_init__(self) -> None:
        if why := litert_unavailable_reason(self.target.device):
            raise UnavailableError(why)
        from ai_edge_litert.interpreter import Interpreter

        threads = (self.options or {}).get("threads", self.threads if self.options is None else None)
        self.interpreter = Interpreter(model_path=self.path, num_threads=int(threads) if threads else None)
        self.interpreter.allocate_tensors()
        self._inputs = self.interpreter.get_input_details()
        self._outputs = self.interpreter.get_output_details()
        self.settings = {"threads": int(threads) if threads else None, "batch": 1, "delegate": "XNNPACK",
                         "io": str(np.dtype(self._inputs[0]["dtype"])),
                         **({} if self.options is None else {"options": self.options})}

    def _run(self, inputs: list[np.ndarray]) -> list[np.ndarray]:
        rows: list[list[np.ndarray]] = []
        for i in range(len(inputs[0])):
            for detail, x in zip(self._inputs, inputs, strict=True):
                self.interpreter.set_tensor(detail["index"], _quantize(x[i:i + 1], detail))
            self.interpreter.invoke()
            rows.append([_dequantize(self.interpreter.get_tensor(d["index"]), d) for d in self._outputs])
        return [np.concatenate([r[k] for r in rows]) for k in range(len(self._outputs))]

    def close(self) -> None:
        self.interpreter = None


def _open(request: OpenRequest) -> Runner:
    return LiteRtRunner(request.target, request.io, request.threads, options=request.options, path=str(request.path))


register_runtime(Runtime("litert", ("cpu",), _open, litert_unavailable_reason, package_version("ai-edge-litert"),
                         candidates=thread_candidates))
