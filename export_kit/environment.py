"""An environment fingerprint: what a latency figure depends on, recorded next to it."""

from __future__ import annotations

import os
import platform
from pathlib import Path


def cpu_model() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def fingerprint() -> dict:
    import onnxruntime
    import torch

    env = {
        "cpu": cpu_model(),
        "cpu_cores": os.cpu_count(),
        "machine": platform.machine(),
        "os": platform.platform(terse=True),
        "python": platform.python_version(),
        "torch": torch.__version__,
        "onnxruntime": onnxruntime.__version__,
        "onnxruntime_providers": onnxruntime.get_available_providers(),
        "torch_threads": torch.get_num_threads(),
        "cuda": torch.cuda.get_device_name(0) if torch.cuda.is_available() else None,
    }
    try:
        import onnx

        env["onnx"] = onnx.__version__
    except ImportError:
        env["onnx"] = None
    env["runtimes"] = runtime_versions()
    return env


def runtime_versions() -> dict[str, str | None]:
    """Each registered runtime's own version, so a new runtime's figures carry it with no edit here."""
    from export_kit.runners import RUNTIMES

    return {name: runtime.version() for name, runtime in RUNTIMES.items()}
