"""ExecuTorch ``.pte`` program lowered to the XNNPACK delegate, for on-device inference on Android, iOS and MCUs.

Needs the optional ``executorch`` package (``pip install 'exportkit[executorch]'``; 1.5.1 runs with torch 2.14.1).
Without it the format reports itself unavailable with that reason instead of failing the build. The program is
exported for batch 1, the shape phone apps feed; the runner feeds larger batches one image at a time.
"""

from __future__ import annotations

from export_kit.errors import ExportError, UnavailableError, meaningful_line
from export_kit.exporters.base import Exporter, ExportRequest, recorded_warnings, register
from export_kit.folder.manifest import Artifact
from export_kit.runners.executorch_runner import executorch_unavailable_reason
from export_kit.safeio.atomic import atomic_path


@register("executorch")
class ExecuTorchExporter(Exporter):
    precision = "fp32"
    summary = "ExecuTorch .pte program, XNNPACK delegate, batch 1 (needs the executorch extra)"

    def export(self, request: ExportRequest) -> list[Artifact]:
        if why := executorch_unavailable_reason():
            raise UnavailableError(why)
        request.refuse_dynamic_axes(self.name)
        import torch
        from executorch.backends.xnnpack.partition.xnnpack_partitioner import XnnpackPartitioner
        from executorch.exir import to_edge_transform_and_lower

        notes: list[str] = []
        rel = "model.pte"
        with recorded_warnings(notes):
            try:
                exported = torch.export.export(request.model, tuple(a[:1] for a in request.args))
                program = to_edge_transform_and_lower(exported, partitioner=[XnnpackPartitioner()]).to_executorch()
            except Exception as exc:
                raise ExportError(f"ExecuTorch lowering failed: {meaningful_line(exc)}") from exc
        with atomic_path(request.out_dir / rel) as tmp:
            tmp.write_bytes(program.buffer)
        delegated = sum(1 for _ in program.executorch_program.backend_delegate_data)
        return [Artifact(name="executorch", format=self.name, path=rel, runtime="executorch", precision=self.precision,
                         details={"lowering": "to_edge_transform_and_lower + XnnpackPartitioner", "batch": 1,
                                  "delegate_blobs": delegated, "warnings": notes})]
