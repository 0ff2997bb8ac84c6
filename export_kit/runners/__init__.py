"""Runtime registry. Importing this package registers every built-in runtime; a new runtime is one file that
calls :func:`register_runtime`, plus its import here."""

from __future__ import annotations

from pathlib import Path

from export_kit.errors import ManifestError, UnavailableError, UsageError
from export_kit.runners import (  # noqa: F401  (registration)
    aoti_runner,
    executorch_runner,
    litert_runner,
    openvino_runner,
    ort_runner,
    torch_runner,
)
from export_kit.runners.base import (
    RUNTIMES,
    IOSpec,
    OpenRequest,
    Runner,
    Runtime,
    Target,
    TensorSpec,
    register_runtime,
    threads_of,
)

__all__ = ["RUNTIMES", "IOSpec", "OpenRequest", "Runner", "Runtime", "Target", "TensorSpec", "check_devices",
           "open_runner", "register_runtime", "targets_for", "threads_of", "unavailable_reason"]


def targets_for(runtime: str, devices: tuple[str, ...] | None = None) -> list[Target]:
    """Where an artifact of ``runtime`` runs. The name comes from a manifest, so an unknown one is a bad file
    (exit 3), not a bad command line."""
    if runtime not in RUNTIMES:
        raise ManifestError(f"the manifest names runtime {runtime!r}, which exportkit does not know (known: "
                            f"{', '.join(RUNTIMES)}); rebuild the folder")
    return [Target(runtime, d) for d in RUNTIMES[runtime].devices if devices is None or d in devices]


def check_devices(devices: tuple[str, ...] | None) -> None:
    """Refuse device names no runtime knows (a typo must not turn into an empty, passing run)."""
    known = sorted({d for runtime in RUNTIMES.values() for d in runtime.devices})
    for device in devices or ():
        if device not in known:
            raise UsageError(f"unknown device {device!r}; known: {', '.join(known)}")


def unavailable_reason(target: Target) -> str | None:
    """Why ``target`` cannot run on this machine, or None when it can."""
    return RUNTIMES[target.runtime].unavailable(target.device)


def open_runner(target: Target, io: IOSpec, *, path: Path | None = None, module=None,
                threads: int | None = None, options: dict | None = None) -> Runner:
    """A runner for a file, or for the ``eager`` runtime an in-memory module."""
    runtime = RUNTIMES.get(target.runtime)
    if runtime is None or target.device not in runtime.devices:
        raise UnavailableError(f"no runner for {target}")
    return runtime.open(OpenRequest(target, io, path, module, threads, options))
