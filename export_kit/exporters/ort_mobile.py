"""ORT format (``.ort``) for ONNX Runtime Mobile and minimal builds, made by onnxruntime's own converter.

The converter runs onnxruntime's graph optimizations once, at build time ("Fixed" style, level all, for an ARM
target by default: the platform phones use), and writes the result as a flatbuffer that a minimal runtime loads
without an ONNX parser. It also writes ``required_operators.config``: the operator list to build a reduced
onnxruntime for the app (``--include_ops_by_config``). Both files land in the folder; verify loads the ``.ort``
back with onnxruntime.
"""

from __future__ import annotations

import subprocess
import sys
import tempfile
from pathlib import Path

from export_kit.errors import ExportError
from export_kit.exporters.base import Exporter, ExportRequest, register
from export_kit.exporters.onnx import OPSET, temporary_fp32_onnx
from export_kit.fileio import atomic_path, sha256_file
from export_kit.manifest import Artifact

TARGET_PLATFORM = "arm"
MODEL, CONFIG = "model.ort", "model.required_operators.config"


def convert(onnx_path: Path, work: Path, target_platform: str = TARGET_PLATFORM) -> tuple[Path, Path]:
    """Run ``python -m onnxruntime.tools.convert_onnx_models_to_ort`` and return the .ort and config paths."""
    cmd = [sys.executable, "-m", "onnxruntime.tools.convert_onnx_models_to_ort", str(onnx_path),
           "--output_dir", str(work), "--optimization_style", "Fixed", "--target_platform", target_platform]
    done = subprocess.run(cmd, capture_output=True, text=True)
    model, config = work / f"{onnx_path.stem}.ort", work / f"{onnx_path.stem}.required_operators.config"
    if done.returncode != 0 or not model.is_file() or not config.is_file():
        tail = (done.stderr or done.stdout).strip().splitlines()
        raise ExportError(f"onnxruntime's ORT converter failed: {tail[-1] if tail else f'exit {done.returncode}'}")
    return model, config


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
