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
    from importlib.metadata import version

    import onnxruntime
    import torch

    env = {
        "exportkit": version("exportkit"),  # the installed distribution's, as the root package's __version__
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


def frozen_requirements() -> list[str]:
    """``name==version`` for each of exportkit's own dependencies as installed here: a constraints file for
    ``pip install -c``, so a CI job installs what a saved baseline was measured with (a baseline refuses another
    version). Local labels such as ``+cpu`` are dropped: the pin then fits the CPU-only and the CUDA wheels."""
    import re
    from importlib import metadata

    pins = []
    for requirement in metadata.requires("exportkit") or []:
        if "extra ==" in requirement:
            continue
        name = re.match(r"[A-Za-z0-9._-]+", requirement).group(0)
        pins.append(f"{name}=={metadata.version(name).split('+')[0]}")
    return pins
