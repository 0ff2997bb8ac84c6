"""Static int8 (QDQ, per-channel weights) calibrated on training images, through onnxruntime's tooling.

Unlike dynamic int8, which in a CNN quantizes activations at run time and on many CPUs ends up slower than
fp32, static quantization fixes activation scales from calibration data, so convolutions run as int8 kernels.
Calibration uses training images only: test images stay unseen by everything that shapes an artifact.

Weights use ``reduce_range`` (7 bits): x86 CPUs without VNNI run uint8 x int8 products through an instruction
that adds pairs into a saturating int16, and with full-range weights this model's top-1 agreement with fp32 fell
to 84% on CIFAR-10 (JPEG) test images when this was chosen (2,000 images). Re-measured 2026-11-23 with
onnxruntime 1.32 on this project's CPU (AVX-512 VNNI), on all 10,000 test images: full range 98.43% agreement,
7-bit 97.25%; the saturation no longer shows here, and may still on a CPU without VNNI.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np

from export_kit.errors import ExportError, UsageError
from export_kit.exporters.base import Exporter, ExportRequest, recorded_warnings, register
from export_kit.exporters.int8 import pre_process
from export_kit.exporters.onnx import OPSET, temporary_fp32_onnx
from export_kit.folder.manifest import Artifact
from export_kit.safeio.atomic import atomic_path

#: The most layers a keep-float variant leaves in float: beyond that the file is mostly float anyway.
MAX_KEEP = 64


def _reader(input_name: str, images: np.ndarray, batch: int = 32):
    from onnxruntime.quantization import CalibrationDataReader

    class Reader(CalibrationDataReader):
        def __init__(self) -> None:
            self._batches = iter([images[i:i + batch] for i in range(0, len(images), batch)])

        def get_next(self):
            chunk = next(self._batches, None)
            return None if chunk is None else {input_name: chunk}

    return Reader()


def quantized_ops(path: Path) -> list[str]:
    """Nodes that run on int8 data: their input, and for a convolution or matrix product also its weights,
    arrive through DequantizeLinear (a layer left in float may still read a dequantized activation)."""
    import onnx

    graph = onnx.load(str(path)).graph
    dq_outputs = {o for n in graph.node if n.op_type == "DequantizeLinear" for o in n.output}
    found = []
    for n in graph.node:
        needed = n.input[:2] if n.op_type in ("Conv", "Gemm", "MatMul") else n.input[:1]
        if n.op_type not in ("QuantizeLinear", "DequantizeLinear") and all(i in dq_outputs for i in needed):
            found.append(f"{n.op_type}:{n.name}")
    return found


@register("int8-static")
class StaticInt8Exporter(Exporter):
    precision = "int8"
    summary = "static int8 ONNX (QDQ, per-channel weights), calibrated on training images"

    @classmethod
    def check_options(cls, given: Mapping[str, Any]) -> dict[str, Any]:
        """``keep_float``: counts N, distinct, from 1 to 64; per N a variant ``int8-static-keepN`` with the N
        layers that add the most error left in float."""
        unknown = set(given) - {"keep_float"}
        if unknown:
            raise UsageError(f"format int8-static takes the option keep_float, not {', '.join(sorted(unknown))}")
        counts = given.get("keep_float", ())
        if not (isinstance(counts, (list, tuple)) and all(isinstance(n, int) and 1 <= n <= MAX_KEEP for n in counts)
                and len(set(counts)) == len(counts)):
            raise UsageError(f"int8-static keep_float takes distinct layer counts from 1 to {MAX_KEEP}")
        return {"keep_float": tuple(counts)}

    def export(self, request: ExportRequest) -> list[Artifact]:
        if request.calibration is None or not len(request.calibration):
            raise ExportError("int8-static needs calibration images: build with --data-dir or --dataset")
        notes: list[str] = []
        rel = "model.int8-static.onnx"
        with temporary_fp32_onnx(request, notes) as fp32:
            pre = fp32.with_name("pre.onnx")
            with recorded_warnings(notes):
                pre_process(fp32, pre, notes)
                _quantize(pre, request.out_dir / rel, request, [])
                made = [self._artifact(request, rel, notes)]
                if request.options_for(self.name).get("keep_float"):
                    made += self._keep_float(request, pre, rel, notes)
        return made

    def _artifact(self, request: ExportRequest, rel: str, notes: list[str], name: str = "int8-static",
                  **details) -> Artifact:
        return Artifact(name=name, format=self.name, path=rel, runtime="onnxruntime", precision=self.precision,
                        opset=OPSET,
                        details={"quantization": "onnxruntime quantize_static, QDQ, per-channel QInt8 weights, "
                                                 "(reduce_range), QUInt8 activations, MinMax calibration",
                                 "calibration_images": len(request.calibration),
                                 "int8_layers": quantized_ops(request.out_dir / rel), **details, "warnings": notes})

    def _keep_float(self, request: ExportRequest, pre: Path, full: str, notes: list[str]) -> list[Artifact]:
        """Per count N of the ``keep_float`` option, the same quantization with the N costliest compute layers of the
        full one left in float (:mod:`export_kit.explain.keep_float`), ranked once."""
        from export_kit.explain.keep_float import costliest_nodes

        counts = request.options_for(self.name)["keep_float"]
        ranked = costliest_nodes(pre, request.out_dir / full, {request.input_names[0]: request.calibration},
                                 max(counts))
        made = []
        for count in counts:
            rel, kept = f"model.int8-static-keep{count}.onnx", ranked[:count]
            _quantize(pre, request.out_dir / rel, request, [k["node"] for k in kept])
            made.append(self._artifact(request, rel, notes, name=f"int8-static-keep{count}", kept_float=kept))
        return made


def _quantize(pre: Path, dest: Path, request: ExportRequest, exclude: list[str]) -> None:
    from onnxruntime.quantization import CalibrationMethod, QuantFormat, QuantType, quantize_static

    with atomic_path(dest) as tmp:
        quantize_static(str(pre), str(tmp), _reader(request.input_names[0], request.calibration),
                        quant_format=QuantFormat.QDQ, per_channel=True, weight_type=QuantType.QInt8,
                        activation_type=QuantType.QUInt8, calibrate_method=CalibrationMethod.MinMax,
                        reduce_range=True, nodes_to_exclude=exclude)
