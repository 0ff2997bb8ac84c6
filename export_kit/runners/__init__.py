"""Open a runner for an artifact on a target; list the targets an artifact can run on."""

from __future__ import annotations

from pathlib import Path

from export_kit.errors import UnavailableError, UsageError
from export_kit.runners.base import Runner, Target

__all__ = ["DEVICES", "Runner", "Target", "check_devices", "open_runner", "targets_for", "unavailable_reason"]

#: Devices each runtime can use, in report order. CUDA-side ones are tried and reported skipped when absent.
#: ``onnxruntime-mobile`` is onnxruntime running an ORT-format file: its optimizations were fixed for CPUs at
#: conversion, as on a phone, so it is checked on the CPU provider only.
DEVICES = {"eager": ("cpu", "cuda"), "torchscript": ("cpu", "cuda"), "onnxruntime": ("cpu", "cuda", "tensorrt"),
           "onnxruntime-mobile": ("cpu",), "executorch": ("cpu",)}
ORT_RUNTIMES = ("onnxruntime", "onnxruntime-mobile")


def targets_for(runtime: str, devices: tuple[str, ...] | None = None) -> list[Target]:
    if runtime not in DEVICES:
        raise UsageError(f"unknown runtime {runtime!r}; known: {', '.join(DEVICES)}")
    return [Target(runtime, d) for d in DEVICES[runtime] if devices is None or d in devices]


def check_devices(devices: tuple[str, ...] | None) -> None:
    """Refuse device names no runtime knows (a typo must not turn into an empty, passing run)."""
    known = sorted({d for ds in DEVICES.values() for d in ds})
    for device in devices or ():
        if device not in known:
            raise UsageError(f"unknown device {device!r}; known: {', '.join(known)}")


def unavailable_reason(target: Target) -> str | None:
    """Why ``target`` cannot run on this machine, or None when it can."""
    if target.runtime in ORT_RUNTIMES:
        from export_kit.runners.ort_runner import provider_unavailable_reason

        return provider_unavailable_reason(target.device)
    if target.runtime == "executorch":
        from export_kit.exporters.executorch import executorch_unavailable_reason

        return executorch_unavailable_reason()
    if target.device == "cuda":
        from export_kit.runners.torch_runner import cuda_unavailable_reason

        return cuda_unavailable_reason()
    return None


def open_runner(target: Target, *, path: Path | None = None, module=None, input_shape: tuple[int, ...],
                threads: int | None = None) -> Runner:
    """A runner for a file (TorchScript, ONNX) or, for the ``eager`` runtime, an in-memory module."""
    if target.runtime in ORT_RUNTIMES:
        from export_kit.runners.ort_runner import OrtRunner

        return OrtRunner(target, input_shape, threads, path=str(path))
    if target.runtime == "executorch":
        from export_kit.runners.executorch_runner import ExecuTorchRunner

        return ExecuTorchRunner(target, input_shape, threads, path=str(path))
    from export_kit.runners.torch_runner import TorchRunner, load_torchscript

    if target.runtime == "torchscript":
        module = load_torchscript(str(path), target.device)
    elif target.runtime != "eager" or module is None:
        raise UnavailableError(f"no runner for {target}")
    return TorchRunner(target, input_shape, threads, module=module)
