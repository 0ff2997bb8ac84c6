"""AOTInductor packages: the model compiled ahead of time into a shared library, loaded by
``torch._inductor.aoti_load_package`` here and by ``torch::inductor::AOTIModelPackageLoader`` in a C++ app.

Loading one opens native code from the file, so the runtime is registered as running code: a folder's package
is loaded only when the folder's trust covers its bytes. A package is compiled for one device; exportkit compiles
for the CPU, so the CUDA target is refused with the reason.
"""

from __future__ import annotations

import contextlib
import os
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from export_kit.errors import UnavailableError
from export_kit.runners.base import OpenRequest, Runner, Runtime, register_runtime, thread_candidates
from export_kit.runners.torch_runner import TorchRunner, _version
from export_kit.safeio.limits import check_zip


@dataclass
class CompiledModel:
    """The loaded package as the torch runner drives a module: called with tensors, already on its device."""

    run: Any

    def to(self, device) -> CompiledModel:
        if str(device) != "cpu":
            raise UnavailableError(f"this AOTInductor package was compiled for the CPU, not {device}")
        return self

    def __call__(self, *args):
        return self.run(*args)


def _unavailable(device: str) -> str | None:
    return None if device == "cpu" else "exportkit compiles AOTInductor packages for the CPU"


def load_package(path: str) -> CompiledModel:
    """Load a package whose bytes the folder's trust already covers (the runtime runs code, so the folder checks
    that first). torch extracts its shared library under ``$TMPDIR`` and leaves it there when a load fails; the
    extraction goes into a private directory (0700) instead, removed on every path once the library is open."""
    import torch

    check_zip(Path(path))
    with tempfile.TemporaryDirectory(prefix="exportkit-aoti-") as private, _tmpdir(private):
        return CompiledModel(torch._inductor.aoti_load_package(path))


@contextlib.contextmanager
def _tmpdir(path: str) -> Iterator[None]:
    """``$TMPDIR`` set to ``path`` for the block (where libtorch's loader extracts), restored after it."""
    before = os.environ.get("TMPDIR")
    os.environ["TMPDIR"] = path
    try:
        yield
    finally:
        if before is None:
            os.environ.pop("TMPDIR", None)
        else:
            os.environ["TMPDIR"] = before


def _open(request: OpenRequest) -> Runner:
    if why := _unavailable(request.target.device):
        raise UnavailableError(why)
    return TorchRunner(request.target, request.io, request.threads, options=request.options,
                       module=load_package(str(request.path)), set_eval=False)


register_runtime(Runtime("aoti", ("cpu",), _open, _unavailable, _version, runs_code=True, candidates=thread_candidates))
