"""ExecuTorch's Python runtime running a ``.pte`` program: the same portable runtime and XNNPACK kernels an app
links, driven from Python so verify and bench treat it like every other format."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from export_kit.errors import UnavailableError
from export_kit.runners.base import Runner


@dataclass
class ExecuTorchRunner(Runner):
    path: str = ""
    method: Any = None

    def __post_init__(self) -> None:
        from export_kit.exporters.executorch import executorch_unavailable_reason

        if self.target.device != "cpu":
            raise UnavailableError("ExecuTorch runs here on the CPU (XNNPACK) only")
        if why := executorch_unavailable_reason():
            raise UnavailableError(why)
        from executorch.runtime import Runtime

        self.method = Runtime.get().load_program(self.path).load_method("forward")
        self.settings = {"runtime": "executorch.runtime", "batch": 1}

    def _run(self, batch: np.ndarray) -> np.ndarray:
        """The program has batch 1 baked in: feed one image at a time."""
        import torch

        return np.concatenate([self.method.execute([torch.from_numpy(batch[i:i + 1])])[0].numpy()
                               for i in range(len(batch))])

    def close(self) -> None:
        self.method = None
