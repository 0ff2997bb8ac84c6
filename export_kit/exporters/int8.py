"""Dynamic int8: weights stored as int8, activations quantized on the fly; two variants, ONNX and TorchScript.

onnxruntime's ``quantize_dynamic`` fails in ONNX shape inference on a dynamo-exported graph as it comes out of
the exporter, so the fp32 graph first goes through ``quant_pre_process`` (symbolic shape inference + graph
cleanup), which is the path onnxruntime documents for quantization.

ONNX weights are quantized to 7 bits (``reduce_range``). onnxruntime multiplies uint8 activations by int8 weights;
an x86 CPU without VNNI (AVX2 alone: most x86 edge boxes, and AVX-512 CPUs before Cascade Lake) does it with an
instruction that sums pairs of products into a saturating int16, which 8-bit weights can overflow. On the suite's
text model (an embedding, one transformer encoder layer) the full-range file's worst-sample cosine to fp32 was
0.9998 on this project's CPU (AVX-512 VNNI) but 0.949, with 97.5% top-1 agreement, on the same CPU emulated
without VNNI (``qemu-x86_64 -cpu max``, which has AVX2 and no VNNI); with 7-bit weights it is 0.9998 on both
(onnxruntime 1.32.0, 40 golden samples). tests/test_int8_isa.py repeats that comparison.
"""

from __future__ import annotations

from pathlib import Path

from export_kit.errors import PartialExportError, meaningful_line
from export_kit.exporters.base import Exporter, ExportRequest, recorded_warnings, register
from export_kit.exporters.onnx import OPSET, temporary_fp32_onnx
from export_kit.exporters.torchscript import save_traced
from export_kit.folder.manifest import Artifact
from export_kit.safeio.atomic import atomic_path

INT8_ONNX_OPS = {"ConvInteger", "MatMulInteger", "QLinearConv", "QLinearMatMul", "DynamicQuantizeLinear"}


def pre_process(src: Path, dst: Path, notes: list[str]) -> None:
    """onnxruntime's quantization pre-processing (shape inference + graph cleanup). Its symbolic shape inference
    gives up on some graphs (a Reshape after global max pooling, for one); ONNX's own shape inference then suffices,
    and the note says it was used."""
    from onnxruntime.quantization.shape_inference import quant_pre_process

    try:
        quant_pre_process(str(src), str(dst), skip_symbolic_shape=False)
    except Exception as exc:
        notes.append(f"symbolic shape inference failed ({type(exc).__name__}: {exc}); used ONNX shape inference")
        quant_pre_process(str(src), str(dst), skip_symbolic_shape=True)


def quantize_onnx(request: ExportRequest, path: Path, notes: list[str]) -> list[str]:
    """Write the dynamic-int8 ONNX model and return the names of the nodes that really compute in int8."""
    import onnx
    from onnxruntime.quantization import QuantType, quantize_dynamic

    with temporary_fp32_onnx(request, notes) as fp32:
        pre = fp32.with_name("pre.onnx")
        with recorded_warnings(notes):
            pre_process(fp32, pre, notes)
            with atomic_path(path) as tmp:
                quantize_dynamic(str(pre), str(tmp), weight_type=QuantType.QInt8, reduce_range=True)
                onnx.checker.check_model(str(tmp), full_check=True)
    graph = onnx.load(str(path)).graph
    return [f"{n.op_type}:{n.name}" for n in graph.node if n.op_type in INT8_ONNX_OPS - {"DynamicQuantizeLinear"}]


def quantized_torch_layers(qmodel) -> list[str]:
    """Module paths that became dynamic-quantized (torch quantizes only Linear/RNN layers this way)."""
    return [f"{type(m).__name__}:{name}" for name, m in qmodel.named_modules()
            if type(m).__module__.startswith("torch.ao.nn.quantized.dynamic")]


@register("int8")
class Int8Exporter(Exporter):
    precision = "int8"
    summary = "dynamic-quantized int8: ONNX (onnxruntime quantize_dynamic) and TorchScript (torch.ao)"

    def export(self, request: ExportRequest) -> list[Artifact]:
        import torch

        onnx_notes: list[str] = []
        onnx_layers = quantize_onnx(request, request.out_dir / "model.int8.onnx", onnx_notes)
        made = [Artifact(name="int8-onnx", format=self.name, path="model.int8.onnx", runtime="onnxruntime",
                         precision=self.precision, opset=OPSET,
                         details={"quantization": "onnxruntime quantize_dynamic, QInt8 weights in 7 bits "
                                                  "(reduce_range)",
                                  "int8_layers": onnx_layers, "warnings": onnx_notes})]
        ts_notes: list[str] = []
        try:
            with recorded_warnings(ts_notes):
                qmodel = torch.ao.quantization.quantize_dynamic(request.model, {torch.nn.Linear}, dtype=torch.qint8)
            save_traced(qmodel, request.args, request.out_dir / "model.int8.torchscript.pt", freeze=False,
                        notes=ts_notes)
        except Exception as exc:  # the ONNX file stands on its own; the TorchScript one fails alone
            raise PartialExportError(made, f"int8-torchscript: {meaningful_line(exc)}") from exc
        return [*made, Artifact(name="int8-torchscript", format=self.name, path="model.int8.torchscript.pt",
                                runtime="torchscript", precision=self.precision,
                                details={"quantization": "torch.ao.quantization.quantize_dynamic, qint8 Linear",
                                         "int8_layers": quantized_torch_layers(qmodel), "warnings": ts_notes})]
