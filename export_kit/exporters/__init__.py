"""Exporter registry. Importing this package registers every built-in format."""

from export_kit.exporters import (  # noqa: F401  (registration side effect)
    aoti,
    executorch,
    fp16,
    int8,
    int8_static,
    litert,
    onnx,
    openvino,
    ort_mobile,
    torch_export,
    torchscript,
)
from export_kit.exporters.base import EXPORTERS, Exporter, ExportRequest, parse_formats, register

__all__ = ["EXPORTERS", "ExportRequest", "Exporter", "parse_formats", "register"]
