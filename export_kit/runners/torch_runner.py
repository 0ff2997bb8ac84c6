"""PyTorch runtimes: ``eager`` (an ``nn.Module`` rebuilt from the checkpoint: the reference), ``torchscript`` (a
file ``torch.jit.load`` runs; its loader executes code stored in the file, so it needs a trusted folder) and
``torch-export`` (a ``.pt2`` ExportedProgram; ``torch.export.load`` falls back to ``torch.load(weights_only=False)``
for what it cannot read as data, so it may unpickle code and needs a trusted folder too)."""

from __future__ import annotations

import contextlib
import functools
import re
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from export_kit.errors import UnavailableError
from export_kit.runners.base import OpenRequest, Runner, Runtime, register_runtime, thread_candidates
from export_kit.safeio.limits import check_zip


@functools.cache
def default_threads() -> int:
    """torch's intra-op thread count as a fresh process starts it, read before any runner changes it."""
    import torch

    return torch.get_num_threads()


def cuda_unavailable_reason() -> str | None:
    import torch

    if not torch.cuda.is_available():
        return "torch.cuda.is_available() is False (no CUDA device or a CPU-only torch build)"
    return None


def _unavailable(device: str) -> str | None:
    return cuda_unavailable_reason() if device == "cuda" else None


def _version() -> str:
    import torch

    return torch.__version__


@contextlib.contextmanager
def full_fp32() -> Iterator[None]:
    """Convolutions and matmuls in true float32 while the block runs, restoring the caller's choice after.

    torch lets cuDNN round convolution inputs to TF32 (10-bit mantissa) by default on Ampere and later GPUs. An
    fp32 row computed that way is not the fp32 model: on an H100 the residual CNN's eager logits moved by
    1.9e-4 from the CPU's, past the fp32 tolerance, and a verifier that allowed it would bless TF32 as fp32.
    """
    import torch

    cudnn, matmul = torch.backends.cudnn.allow_tf32, torch.backends.cuda.matmul.allow_tf32
    torch.backends.cudnn.allow_tf32 = torch.backends.cuda.matmul.allow_tf32 = False
    try:
        yield
    finally:
        torch.backends.cudnn.allow_tf32, torch.backends.cuda.matmul.allow_tf32 = cudnn, matmul


@dataclass
class TorchRunner(Runner):
    module: Any = None
    #: False for an ExportedProgram's module: its graph was captured in eval mode, and it refuses ``.eval()``.
    set_eval: bool = True

    def __post_init__(self) -> None:
        import torch

        if self.target.device == "cuda" and (why := cuda_unavailable_reason()):
            raise UnavailableError(why)
        default = default_threads()  # first, so the cache holds the count no runner has changed yet
        self._restore_threads = torch.get_num_threads()
        threads = self.threads if self.options is None else self.options.get("threads", default)
        if threads:
            torch.set_num_threads(threads)
        self.settings = {"threads": torch.get_num_threads(), "torch_threads": torch.get_num_threads(),
                         "inference_mode": True, "tf32": False,
                         **({} if self.options is None else {"options": self.options})}
        self._device = torch.device(self.target.device)
        self._precision = full_fp32 if self._device.type == "cuda" else contextlib.nullcontext  # TF32 is GPU-only
        self.module = self.module.to(self._device)
        if self.set_eval:
            self.module.eval()

    def _run(self, inputs: list[np.ndarray]) -> list[np.ndarray]:
        import torch

        with torch.inference_mode(), self._precision():
            out = self.module(*(torch.from_numpy(x).to(self._device, non_blocking=True) for x in inputs))
        if isinstance(out, dict):
            out = [out[name] for name in self.io.outputs]
        elif isinstance(out, torch.Tensor):
            out = [out]
        return [o.float().cpu().numpy() for o in out]

    def prepare(self) -> None:
        import torch

        torch.set_num_threads(self.settings["threads"])

    def synchronize(self) -> None:
        import torch

        if self._device.type == "cuda":
            torch.cuda.synchronize()

    def close(self) -> None:
        """Release the module and give back the process-wide thread count this runner changed."""
        import torch

        self.module = None
        torch.set_num_threads(self._restore_threads)


def cpu_only_ops(module) -> list[str]:
    """The ``quantized::`` operators a TorchScript module calls. torch has CPU kernels only for them, and a CUDA
    run of such a module ended the whole process with a segmentation fault (torch 2.11, H100), so the caller must
    refuse the device before it runs, not catch an error after."""
    return sorted(set(re.findall(r"quantized::\w+", str(module.inlined_graph))))


def load_torchscript(path: str, device: str):
    """Load on the CPU first, so a module whose operators have no kernel on ``device`` is refused as unavailable;
    then load again onto ``device``, because a frozen module keeps its weights as graph constants, which
    ``map_location`` moves and ``Module.to`` does not."""
    import torch

    if device == "cuda" and (why := cuda_unavailable_reason()):
        raise UnavailableError(why)
    check_zip(Path(path))
    module = torch.jit.load(path, map_location="cpu")
    if device == "cpu":
        return module
    if ops := cpu_only_ops(module):
        raise UnavailableError(f"{', '.join(ops)} has CPU kernels only in torch")
    return torch.jit.load(path, map_location=device)


def _open_eager(request: OpenRequest) -> Runner:
    if request.module is None:
        raise UnavailableError(f"no module for {request.target}")
    return TorchRunner(request.target, request.io, request.threads, options=request.options, module=request.module)


def _open_torchscript(request: OpenRequest) -> Runner:
    module = load_torchscript(str(request.path), request.target.device)
    return TorchRunner(request.target, request.io, request.threads, options=request.options, module=module)


def load_exported(path: str, device: str):
    """The ExportedProgram's module on ``device``: loaded on the CPU, then moved (its weights are parameters and
    buffers of the module, which ``Module.to`` moves)."""
    import torch

    if device == "cuda" and (why := cuda_unavailable_reason()):
        raise UnavailableError(why)
    check_zip(Path(path))
    with open(path, "rb") as fh:  # a file object: the archive reader wants a name ending in .pt2
        return torch.export.load(fh).module().to(device)


def _open_exported(request: OpenRequest) -> Runner:
    module = load_exported(str(request.path), request.target.device)
    return TorchRunner(request.target, request.io, request.threads, options=request.options, module=module,
                       set_eval=False)


register_runtime(Runtime("eager", ("cpu", "cuda"), _open_eager, _unavailable, _version, candidates=thread_candidates))
register_runtime(Runtime("torchscript", ("cpu", "cuda"), _open_torchscript, _unavailable, _version, runs_code=True,
                         candidates=thread_candidates))
register_runtime(Runtime("torch-export", ("cpu", "cuda"), _open_exported, _unavailable, _version, runs_code=True,
                         candidates=thread_candidates))
