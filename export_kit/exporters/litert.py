"""LiteRT (TensorFlow Lite) ``.tflite`` programs through litert-torch, for Android apps: ``litert`` in float32 and
``litert-int8`` fully int8 (int8 weights, activations, inputs and outputs), quantized with litert-torch's PT2E
quantizer (symmetric, per-channel weights, histogram-calibrated on training images, never test images).

Both are converted for batch 1: litert-torch's lowering of the seed CNN's flatten failed with a dynamic batch
(JAX wants concrete shapes). Needs the optional ``litert`` extra (litert-torch 0.10, which accepts torch < 2.15);
without it both formats report themselves unavailable.
"""

from __future__ import annotations

import importlib.util
import tempfile
from pathlib import Path

from export_kit.errors import ExportError, UnavailableError, meaningful_line
from export_kit.exporters.base import Exporter, ExportRequest, recorded_warnings, register
from export_kit.folder.manifest import Artifact
from export_kit.runners.litert_runner import INSTALL_HINT
from export_kit.safeio.atomic import atomic_path

#: Calibration images fed one at a time (the program has batch 1): enough for the histogram observers.
CALIBRATION_IMAGES = 300


def _converter():
    if importlib.util.find_spec("litert_torch") is None:
        raise UnavailableError(f"the litert-torch package is not installed: {INSTALL_HINT}")
    import litert_torch

    return litert_torch


def _write(program, request: ExportRequest, rel: str) -> None:
    """``program.export`` wants a path ending in .tflite; the atomic writer's temporary lacks it."""
    with tempfile.TemporaryDirectory(prefix="exportkit-litert-") as work:
        scratch = Path(work) / rel
        program.export(str(scratch))
        with atomic_path(request.out_dir / rel) as tmp:
            tmp.write_bytes(scratch.read_bytes())


def _single_output(request: ExportRequest, fmt: str) -> None:
    if len(request.output_names) != 1 or len(request.args) != 1:
        raise ExportError(f"{fmt}: exportkit converts models with one input and one output to LiteRT")
    request.refuse_dynamic_axes(fmt)


@register("litert")
class LiteRtExporter(Exporter):
    precision = "fp32"
    summary = "LiteRT .tflite (float32, batch 1) via litert-torch, for Android (needs the litert extra)"

    def export(self, request: ExportRequest) -> list[Artifact]:
        litert_torch = _converter()
        _single_output(request, self.name)
        notes: list[str] = []
        rel = "model.tflite"
        with recorded_warnings(notes):
            try:
                program = litert_torch.convert(request.model, tuple(a[:1] for a in request.args))
            except Exception as exc:
                raise ExportError(f"litert-torch conversion failed: {meaningful_line(exc)}") from exc
            _write(program, request, rel)
        return [Artifact(name="litert", format=self.name, path=rel, runtime="litert", precision=self.precision,
                         details={"converter": f"litert_torch.convert {litert_torch.__version__}", "batch": 1,
                                  "warnings": notes})]


@register("litert-int8")
class LiteRtInt8Exporter(Exporter):
    precision = "int8"
    summary = "LiteRT .tflite, full int8 (PT2E, per-channel, calibrated on training images), batch 1"

    def export(self, request: ExportRequest) -> list[Artifact]:
        litert_torch = _converter()
        _single_output(request, self.name)
        if request.calibration is None or not len(request.calibration):
            raise ExportError("litert-int8 needs calibration images: build with --data-dir or --dataset")
        notes: list[str] = []
        rel = "model.int8.tflite"
        with recorded_warnings(notes):
            try:
                program = self._quantized(litert_torch, request)
            except Exception as exc:
                raise ExportError(f"litert-torch int8 conversion failed: {meaningful_line(exc)}") from exc
            _write(program, request, rel)
        return [Artifact(name="litert-int8", format=self.name, path=rel, runtime="litert", precision=self.precision,
                         details={"quantization": "litert_torch PT2EQuantizer, symmetric int8, per-channel weights, "
                                                  "histogram calibration, int8 inputs and outputs",
                                  "calibration_images": min(len(request.calibration), CALIBRATION_IMAGES),
                                  "batch": 1, "warnings": notes})]

    @staticmethod
    def _quantized(litert_torch, request: ExportRequest):
        import torch
        from litert_torch.quantize import pt2e_quantizer
        from litert_torch.quantize.quant_config import QuantConfig
        from torchao.quantization.pt2e import quantize_pt2e

        example = (request.args[0][:1],)
        quantizer = pt2e_quantizer.PT2EQuantizer().set_global(
            pt2e_quantizer.get_symmetric_quantization_config(is_per_channel=True))
        module = quantize_pt2e.prepare_pt2e(torch.export.export(request.model, example).module(), quantizer)
        with torch.no_grad():
            for image in request.calibration[:CALIBRATION_IMAGES]:
                module(torch.from_numpy(image[None]))
        module = quantize_pt2e.convert_pt2e(module, fold_quantize=False)
        return litert_torch.convert(module, example, quant_config=QuantConfig(pt2e_quantizer=quantizer))
