"""TorchScript: traced, frozen, saved, and reloaded in a fresh ``torch.jit.load`` before it counts as exported."""

from __future__ import annotations

from pathlib import Path

from export_kit.errors import ExportError
from export_kit.exporters.base import Exporter, ExportRequest, recorded_warnings, register
from export_kit.folder.manifest import Artifact
from export_kit.model.outputs import flat_outputs
from export_kit.runners.torch_runner import full_fp32
from export_kit.safeio.atomic import atomic_path


def save_traced(model, args: tuple, path: Path, *, freeze: bool, notes: list[str]) -> None:
    """Trace ``model`` on ``args``, optionally freeze it, save it atomically, and prove the saved file loads and
    gives outputs of the eager shapes.

    Tracing records cuDNN's TF32 switch as a constant argument of every convolution, so a file traced with torch's
    default (TF32 allowed) computed 10-bit-mantissa convolutions on an H100 whatever its runner set: its logits
    missed the fp32 ones by 1.3e-4 on a scale of 0.5. Traced under :func:`full_fp32`, the file is fp32 on every
    GPU, in Python and in a libtorch C++ app alike.
    """
    import torch

    with recorded_warnings(notes), torch.inference_mode(False), torch.no_grad(), full_fp32():
        traced = torch.jit.trace(model, args, check_trace=False, strict=False)  # strict=False: dict outputs
        if freeze:
            traced = torch.jit.freeze(traced.eval())
        expected = [tuple(t.shape) for t in flat_outputs(model(*args))]
        with atomic_path(path) as tmp:
            torch.jit.save(traced, str(tmp))
            reloaded = torch.jit.load(str(tmp), map_location="cpu")
            got = [tuple(t.shape) for t in flat_outputs(reloaded(*args))]
    if got != expected:
        raise ExportError(f"reloaded TorchScript returns shapes {got}, eager {expected}")


@register("torchscript")
class TorchScriptExporter(Exporter):
    precision = "fp32"
    summary = "TorchScript (traced + frozen) for libtorch C++ and the PyTorch runtime"

    def export(self, request: ExportRequest) -> list[Artifact]:
        notes: list[str] = []
        rel = "model.torchscript.pt"
        save_traced(request.model, request.args, request.out_dir / rel, freeze=True, notes=notes)
        return [Artifact(name="torchscript", format=self.name, path=rel, runtime="torchscript",
                         precision=self.precision, details={"traced": True, "frozen": True, "warnings": notes})]
