"""ORT format (``.ort``) for ONNX Runtime Mobile and minimal builds, made by onnxruntime's own converter.

The converter runs onnxruntime's graph optimizations once, at build time ("Fixed" style, level all, for an ARM
target by default: the platform phones use), and writes the result as a flatbuffer that a minimal runtime loads
without an ONNX parser. It also writes ``required_operators.config``: the operator list to build a reduced
onnxruntime for the app (``--include_ops_by_config``). Both files land in the folder; verify loads the ``.ort``
back with onnxruntime.
"""

from __future__ import annotations

import tempfile
from pathlib import Path

from export_kit.exporters.base import Exporter, ExportRequest, register
from export_kit.exporters.onnx import OPSET, temporary_fp32_onnx
from export_kit.folder.manifest import Artifact
from export_kit.runners.ort_runner import TARGET_PLATFORM, convert
from export_kit.safeio.atomic import atomic_path, sha256_file

MODEL, CONFIG = "model.ort", "model.required_operators.config"


def _operators(config: Path) -> list[str]:
    return [line.strip() for line in config.read_text(encoding="utf-8").splitlines()
            if line.strip() and not line.startswith("#")]


@register("ort")
class OrtMobileExporter(Exporter):
    precision = "fp32"
    summary = "ONNX Runtime Mobile format (.ort) plus required_operators.config for reduced builds"

    def export(self, request: ExportRequest) -> list[Artifact]:
        notes: list[str] = []
        with temporary_fp32_onnx(request, notes) as fp32, tempfile.TemporaryDirectory(prefix="exportkit-ort-") as w:
            model, config = convert(fp32, Path(w))
            for src, rel in ((config, CONFIG), (model, MODEL)):
                with atomic_path(request.out_dir / rel) as tmp:
                    tmp.write_bytes(src.read_bytes())
        config_path = request.out_dir / CONFIG
        return [Artifact(name="ort", format=self.name, path=MODEL, runtime="onnxruntime-mobile",
                         precision=self.precision, opset=OPSET,
                         details={"converter": "onnxruntime.tools.convert_onnx_models_to_ort",
                                  "optimization_style": "Fixed", "target_platform": TARGET_PLATFORM,
                                  "required_operators": CONFIG, "required_operators_sha256": sha256_file(config_path),
                                  "operators": _operators(config_path), "warnings": notes})]
