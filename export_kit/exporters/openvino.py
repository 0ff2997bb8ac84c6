"""OpenVINO IR for Intel CPUs and edge boxes: ``model.openvino.xml`` (the graph) and ``model.openvino.bin`` (the
weights, float32: ``save_model`` would halve them to fp16 by default), converted from the fp32 ONNX file with
its dynamic batch.

Two artifacts share the files: ``openvino``, run with f32 inference precision pinned and held to fp32's
tolerance, and ``openvino-default``, run with the CPU plugin's own choice (bf16 on CPUs with bf16 instructions)
and held to the bf16 class (:mod:`export_kit.runners.openvino_runner`). Needs the optional ``openvino``
package; without it the format reports itself unavailable.
"""

from __future__ import annotations

import os
import tempfile
from pathlib import Path

from export_kit.errors import ExportError, UnavailableError, meaningful_line
from export_kit.exporters.base import Exporter, ExportRequest, recorded_warnings, register
from export_kit.exporters.onnx import temporary_fp32_onnx
from export_kit.folder.manifest import Artifact
from export_kit.runners.openvino_runner import openvino_unavailable_reason
from export_kit.safeio.atomic import atomic_path

XML, BIN = "model.openvino.xml", "model.openvino.bin"


@register("openvino")
class OpenVinoExporter(Exporter):
    precision = "fp32"
    summary = "OpenVINO IR (.xml + .bin), f32 pinned and the CPU plugin's default precision (needs the openvino extra)"

    @classmethod
    def precision_of(cls, artifact: Artifact) -> str:
        return "bf16" if artifact.runtime == "openvino-default" else cls.precision

    def export(self, request: ExportRequest) -> list[Artifact]:
        if why := openvino_unavailable_reason():
            raise UnavailableError(why)
        import openvino as ov

        notes: list[str] = []
        with temporary_fp32_onnx(request, notes) as fp32, tempfile.TemporaryDirectory(prefix="exportkit-ov-") as work:
            with recorded_warnings(notes):
                try:
                    ov.save_model(ov.convert_model(str(fp32)), str(Path(work) / XML), compress_to_fp16=False)
                except Exception as exc:
                    raise ExportError(f"OpenVINO conversion failed: {meaningful_line(exc)}") from exc
            for rel in (BIN, XML):  # the graph last: it names the weights
                with atomic_path(request.out_dir / rel) as tmp:
                    os.replace(Path(work) / rel, tmp)
        default = str(ov.Core().get_property("CPU", "INFERENCE_PRECISION_HINT"))
        details = {"converter": f"openvino.convert_model from the fp32 ONNX file, save_model(compress_to_fp16="
                                f"False), openvino {ov.__version__}", "warnings": notes}
        return [Artifact(name="openvino", format=self.name, path=XML, runtime="openvino", precision="fp32",
                         files=[{"path": BIN}], details={**details, "inference_precision": "f32 (pinned)"}),
                Artifact(name="openvino-default", format=self.name, path=XML, runtime="openvino-default",
                         precision="bf16", files=[{"path": BIN}],
                         details={**details, "inference_precision": f"the CPU plugin's default ({default} where "
                                                                    "it was built)"})]
