"""ExecuTorch's Python runtime running a ``.pte`` program: the same portable runtime and XNNPACK kernels an app
links, driven from Python so verify and bench treat it like every other format."""

from __future__ import annotations

import importlib.util
from dataclasses import dataclass
from typing import Any

import numpy as np

from export_kit.errors import UnavailableError
from export_kit.runners.base import OpenRequest, Runner, Runtime, package_version, register_runtime

INSTALL_HINT = "pip install 'exportkit[executorch]' (executorch 1.5.1 works with torch 2.14.1)"


def executorch_unavailable_reason(device: str = "cpu") -> str | None:
    if importlib.util.find_spec("executorch") is None:
        return f"the executorch package is not installed: {INSTALL_HINT}"
    if device != "cpu":
        return "ExecuTorch runs here on the CPU (XNNPACK) only"
    return None


@dataclass
class ExecuTorchRunner(Runner):
    path: str = ""
    method: Any = None

    def __post_init__(self) -> None:
        if why := executorch_unavailable_reason(self.target.device):
            raise UnavailableError(why)
        from executorch.runtime import Runtime as EtRuntime

        self.method = EtRuntime.get().load_program(self.path).load_method("forward")
        self.settings = {"runtime": "executorch.runtime", "batch": 1}

    def _run(self, inputs: list[np.ndarray]) -> list[np.ndarray]:
        """The program has batch 1 baked in: feed one sample at a time."""
        import torch

        per_sample = [self.method.execute([torch.from_numpy(x[i:i + 1]) for x in inputs])
                      for i in range(len(inputs[0]))]
        return [np.concatenate([outs[k].numpy() for outs in per_sample]) for k in range(len(self.io.outputs))]

    def close(self) -> None:
        self.method = None


def _open(request: OpenRequest) -> Runner:
    return ExecuTorchRunner(request.target, request.io, request.threads, path=str(request.path))


register_runtime(Runtime("executorch", ("cpu",), _open, executorch_unavailable_reason, package_version("executorch")))
