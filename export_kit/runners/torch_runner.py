"""PyTorch runners: an eager ``nn.Module`` (the reference) and a loaded TorchScript file, on CPU or CUDA."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from export_kit.errors import UnavailableError
from export_kit.limits import check_zip
from export_kit.runners.base import Runner


def cuda_unavailable_reason() -> str | None:
    import torch

    if not torch.cuda.is_available():
        return "torch.cuda.is_available() is False (no CUDA device or a CPU-only torch build)"
    return None


@dataclass
class TorchRunner(Runner):
    module: Any = None

    def __post_init__(self) -> None:
        import torch

        if self.target.device == "cuda" and (why := cuda_unavailable_reason()):
            raise UnavailableError(why)
        if self.threads:
            torch.set_num_threads(self.threads)
        self.settings = {"torch_threads": torch.get_num_threads(), "inference_mode": True}
        self._device = torch.device(self.target.device)
        self.module = self.module.to(self._device).eval()

    def _run(self, batch: np.ndarray) -> np.ndarray:
        import torch

        with torch.inference_mode():
            out = self.module(torch.from_numpy(batch).to(self._device, non_blocking=True))
        return out.float().cpu().numpy()

    def synchronize(self) -> None:
        import torch

        if self._device.type == "cuda":
            torch.cuda.synchronize()

    def close(self) -> None:
        self.module = None


def load_torchscript(path: str, device: str):
    import torch

    if device == "cuda" and (why := cuda_unavailable_reason()):
        raise UnavailableError(why)
    check_zip(Path(path))
    return torch.jit.load(path, map_location=device)
