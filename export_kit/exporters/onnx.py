"""ONNX: one self-contained file with a dynamic batch dimension on every input (and every named axis dynamic), a
fixed opset, checked, with metadata inside."""

from __future__ import annotations

import contextlib
import os
import tempfile
from collections.abc import Iterator
from pathlib import Path

from export_kit.errors import ExportError, meaningful_line
from export_kit.exporters.base import Exporter, ExportRequest, recorded_warnings, register
from export_kit.folder.manifest import Artifact
from export_kit.safeio.atomic import atomic_path

OPSET = 18


def export_onnx(request: ExportRequest, path: Path, notes: list[str]) -> None:
    """Export ``request.model`` to ``path`` (atomically): dynamic batch, opset :data:`OPSET`, checker passed."""
    import onnx
    import torch

    with atomic_path(path) as tmp, recorded_warnings(notes):
        try:
            # traced at batch 2: at batch 1 the exporter may specialize the axis (a transformer's attention did)
            torch.onnx.export(request.model, tuple(torch.cat([a, a]) for a in request.args), str(tmp),
                              input_names=request.input_names,
                              output_names=request.output_names, opset_version=OPSET, dynamo=True,
                              dynamic_shapes=request.dynamic_shapes(), external_data=False,
                              verbose=False)
        except Exception as exc:
            raise ExportError(f"torch.onnx.export failed: {meaningful_line(exc)}") from exc
        proto = onnx.load(str(tmp))
        for key, value in request.metadata.items():
            entry = proto.metadata_props.add()
            entry.key, entry.value = key, value
        onnx.save(proto, str(tmp))
        onnx.checker.check_model(str(tmp), full_check=True)
    stray = [p for p in os.listdir(path.parent) if p.startswith(path.name) and p != path.name]
    if stray:
        raise ExportError(f"ONNX export left external-data files {stray}; expected one self-contained file")


@contextlib.contextmanager
def temporary_fp32_onnx(request: ExportRequest, notes: list[str]) -> Iterator[Path]:
    """An fp32 export in a scratch folder, for formats derived from it (int8, int8-static, fp16)."""
    with tempfile.TemporaryDirectory(prefix="exportkit-onnx-") as work:
        path = Path(work) / "fp32.onnx"
        export_onnx(request, path, notes)
        yield path


@register("onnx")
class OnnxExporter(Exporter):
    precision = "fp32"
    summary = f"ONNX opset {OPSET}, dynamic batch, for onnxruntime (CPU, CUDA, TensorRT) and other ONNX runtimes"

    def export(self, request: ExportRequest) -> list[Artifact]:
        notes: list[str] = []
        rel = "model.onnx"
        export_onnx(request, request.out_dir / rel, notes)
        return [Artifact(name="onnx", format=self.name, path=rel, runtime="onnxruntime", precision=self.precision,
                         opset=OPSET, details={"exporter": "torch.onnx.export(dynamo=True)", "warnings": notes})]
