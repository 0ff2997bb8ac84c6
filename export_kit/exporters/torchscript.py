"""TorchScript: traced, frozen, saved, and reloaded in a fresh ``torch.jit.load`` before it counts as exported."""

from __future__ import annotations

from pathlib import Path

from export_kit.errors import ExportError
from export_kit.exporters.base import Exporter, ExportRequest, recorded_warnings, register
from export_kit.fileio import atomic_path
from export_kit.manifest import Artifact


def save_traced(model, example, path: Path, *, freeze: bool, notes: list[str]) -> None:
    """Trace ``model``, optionally freeze it, save it atomically, and prove the saved file loads and runs."""
    import torch

    with recorded_warnings(notes), torch.inference_mode(False), torch.no_grad():
        traced = torch.jit.trace(model, example, check_trace=False)
        if freeze:
            traced = torch.jit.freeze(traced.eval())
        expected = model(example)
        with atomic_path(path) as tmp:
            torch.jit.save(traced, str(tmp))
            reloaded = torch.jit.load(str(tmp), map_location="cpu")
            got = reloaded(example)
    if got.shape != expected.shape:
        raise ExportError(f"reloaded TorchScript returns shape {tuple(got.shape)}, eager {tuple(expected.shape)}")


@register("torchscript")
class TorchScriptExporter(Exporter):
    precision = "fp32"
    summary = "TorchScript (traced + frozen) for libtorch C++ and the PyTorch runtime"

    def export(self, request: ExportRequest) -> list[Artifact]:
        notes: list[str] = []
        rel = "model.torchscript.pt"
        save_traced(request.model, request.example, request.out_dir / rel, freeze=True, notes=notes)
        return [Artifact(name="torchscript", format=self.name, path=rel, runtime="torchscript",
                         precision=self.precision, details={"traced": True, "frozen": True, "warnings": notes})]
