"""torch.export: an ExportedProgram (``model.pt2``) with a dynamic batch axis, saved, reloaded and run before it
counts as exported. It is PyTorch's successor to TorchScript and the input AOTInductor and ExecuTorch compile."""

from __future__ import annotations

import json

from export_kit.errors import ExportError, meaningful_line
from export_kit.exporters.base import Exporter, ExportRequest, recorded_warnings, register
from export_kit.folder.manifest import Artifact
from export_kit.model.outputs import flat_outputs
from export_kit.runners.torch_runner import full_fp32
from export_kit.safeio.atomic import atomic_path

#: Where the manifest's strings (preprocessing, class names) travel inside the archive.
EXTRA_FILE = "exportkit.json"


def export_program(request: ExportRequest):
    """``torch.export.export`` with the batch axis of every input dynamic, and every named axis. The example is
    repeated to batch 2 first: traced at batch 1, export specializes the axis to the constant 1 and refuses to call
    it dynamic."""
    import torch

    with torch.no_grad(), full_fp32():
        try:
            return torch.export.export(request.model, tuple(torch.cat([a, a]) for a in request.args),
                                       dynamic_shapes=request.dynamic_shapes())
        except Exception as exc:
            raise ExportError(f"torch.export.export failed: {meaningful_line(exc)}") from exc


@register("export")
class TorchExportExporter(Exporter):
    precision = "fp32"
    summary = "torch.export ExportedProgram (.pt2), dynamic batch, for torch.export.load and AOTInductor"

    def export(self, request: ExportRequest) -> list[Artifact]:
        import torch

        notes: list[str] = []
        rel = "model.pt2"
        with recorded_warnings(notes):
            program = export_program(request)
            with atomic_path(request.out_dir / rel) as tmp:
                with open(tmp, "wb") as fh:  # a file object: the archive writer wants a name ending in .pt2
                    torch.export.save(program, fh, extra_files={EXTRA_FILE: json.dumps(request.metadata)})
                with open(tmp, "rb") as fh, torch.no_grad():
                    got = [tuple(t.shape) for t in flat_outputs(torch.export.load(fh).module()(*request.args))]
                    expected = [tuple(t.shape) for t in flat_outputs(request.model(*request.args))]
        if got != expected:
            raise ExportError(f"reloaded ExportedProgram returns shapes {got}, eager {expected}")
        return [Artifact(name="export", format=self.name, path=rel, runtime="torch-export", precision=self.precision,
                         details={"exporter": "torch.export.export", "dynamic": ["batch", *request.axes],
                                  "warnings": notes})]
