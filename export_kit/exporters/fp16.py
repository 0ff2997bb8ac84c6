"""fp16 ONNX for GPU execution providers: weights and compute in half precision, float32 inputs and outputs.

The conversion is onnxconverter-common's, which also retypes constants and keeps float32 at the graph's edges
(``keep_io_types``), so apps feed the same tensors as to the fp32 model. onnxruntime's CPU provider runs it by
casting back to float32 where it has no fp16 kernel: verify then measures what fp16 weights cost in accuracy,
while the speed it is made for appears on CUDA and TensorRT rows.
"""

from __future__ import annotations

from export_kit.exporters.base import Exporter, ExportRequest, recorded_warnings, register
from export_kit.exporters.onnx import OPSET, temporary_fp32_onnx
from export_kit.folder.manifest import Artifact
from export_kit.safeio.atomic import atomic_path


@register("fp16")
class Fp16Exporter(Exporter):
    precision = "fp16"
    summary = "fp16 ONNX (float32 inputs/outputs) for CUDA and TensorRT execution providers"

    def export(self, request: ExportRequest) -> list[Artifact]:
        import onnx
        from onnxconverter_common import float16

        notes: list[str] = []
        rel = "model.fp16.onnx"
        with temporary_fp32_onnx(request, notes) as fp32:
            with recorded_warnings(notes):
                half = float16.convert_float_to_float16(onnx.load(str(fp32)), keep_io_types=True)
            with atomic_path(request.out_dir / rel) as tmp:
                onnx.save(half, str(tmp))
                onnx.checker.check_model(str(tmp), full_check=True)
        return [Artifact(name="fp16", format=self.name, path=rel, runtime="onnxruntime", precision=self.precision,
                         opset=OPSET, details={"conversion": "onnxconverter_common.float16, keep_io_types=True",
                                               "warnings": notes})]
