"""OpenVINO on the CPU: the IR (``.xml`` graph, ``.bin`` weights) compiled by the CPU plugin.

Two runtimes read the same files. ``openvino`` pins ``INFERENCE_PRECISION_HINT`` to f32, the only setting under
which its row is the fp32 model: left alone, the CPU plugin computes in bf16 on CPUs with bf16 instructions (this
project's AMD EPYC among them) and in f16 on some ARM CPUs, without a word. ``openvino-default`` leaves the
plugin's choice, so users see what the default costs and gains; its artifact is labelled and judged by the bf16
tolerance class, and the precision the plugin chose is recorded in the row's settings.
"""

from __future__ import annotations

import importlib.util
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from export_kit.errors import UnavailableError
from export_kit.runners.base import OpenRequest, Runner, Runtime, package_version, register_runtime, thread_candidates

INSTALL_HINT = "pip install 'exportkit[openvino]'"


def openvino_unavailable_reason(device: str = "cpu") -> str | None:
    if importlib.util.find_spec("openvino") is None:
        return f"the openvino package is not installed: {INSTALL_HINT}"
    if device != "cpu":
        return "exportkit runs OpenVINO on its CPU plugin only"
    return None


@dataclass
class OpenVinoRunner(Runner):
    path: str = ""
    pinned: bool = True
    request: Any = None

    def __post_init__(self) -> None:
        if why := openvino_unavailable_reason(self.target.device):
            raise UnavailableError(why)
        import openvino as ov

        core = ov.Core()
        model = core.read_model(self.path, str(Path(self.path).with_suffix(".bin")))
        config: dict[str, Any] = {"INFERENCE_PRECISION_HINT": "f32"} if self.pinned else {}
        threads = (self.options or {}).get("threads", self.threads if self.options is None else None)
        if threads:
            config["INFERENCE_NUM_THREADS"] = int(threads)
        compiled = core.compile_model(model, "CPU", config)
        self.request = compiled.create_infer_request()
        self._outputs = list(compiled.outputs)
        self.settings = {"device": "CPU", "threads": int(compiled.get_property("INFERENCE_NUM_THREADS")) or None,
                         "inference_precision": str(compiled.get_property("INFERENCE_PRECISION_HINT")),
                         "precision_pinned": self.pinned,
                         **({} if self.options is None else {"options": self.options})}

    def _run(self, inputs: list[np.ndarray]) -> list[np.ndarray]:
        results = self.request.infer(inputs)
        return [np.array(results[o], copy=True) for o in self._outputs]  # the request reuses its buffers

    def close(self) -> None:
        self.request = None


def _opener(pinned: bool):
    def open_runner(request: OpenRequest) -> Runner:
        return OpenVinoRunner(request.target, request.io, request.threads, options=request.options,
                              path=str(request.path), pinned=pinned)
    return open_runner


register_runtime(Runtime("openvino", ("cpu",), _opener(True), openvino_unavailable_reason,
                         package_version("openvino"), candidates=thread_candidates))
register_runtime(Runtime("openvino-default", ("cpu",), _opener(False), openvino_unavailable_reason,
                         package_version("openvino"), candidates=thread_candidates))
