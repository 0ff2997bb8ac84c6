"""AOTInductor: the torch.export program compiled ahead of time by Inductor into a shared library, packaged as
``model.aoti.pt2`` with its weights, dynamic batch kept. It is PyTorch's path for C++ apps after TorchScript:
``torch::inductor::AOTIModelPackageLoader`` runs it without Python (``examples/cpp``).

Compiling takes about a minute of a C++ compiler on this project's 2-core CPU (the seed CNN: 64-77 s), so the
format is not among the defaults; ask for it with ``--formats ...,aoti``. Packages are compiled for the CPU.
"""

from __future__ import annotations

import os
import tempfile
from pathlib import Path

from export_kit.errors import ExportError, meaningful_line
from export_kit.exporters.base import Exporter, ExportRequest, recorded_warnings, register
from export_kit.exporters.torch_export import export_program
from export_kit.folder.manifest import Artifact
from export_kit.safeio.atomic import atomic_path

REL = "model.aoti.pt2"


@register("aoti")
class AotiExporter(Exporter):
    precision = "fp32"
    summary = "AOTInductor package (.pt2, compiled shared library), dynamic batch, CPU, for C++ apps"

    def export(self, request: ExportRequest) -> list[Artifact]:
        import time

        import torch

        notes: list[str] = []
        with recorded_warnings(notes), tempfile.TemporaryDirectory(prefix="exportkit-aoti-") as work:
            program = export_program(request)
            start = time.perf_counter()
            try:  # the packager wants a file name ending in .pt2, which the atomic writer's temporary lacks
                torch._inductor.aoti_compile_and_package(program, package_path=str(Path(work) / REL))
            except Exception as exc:
                raise ExportError(f"AOTInductor compilation failed: {meaningful_line(exc)}") from exc
            seconds = time.perf_counter() - start
            with atomic_path(request.out_dir / REL) as tmp:
                os.replace(Path(work) / REL, tmp)
        return [Artifact(name="aoti", format=self.name, path=REL, runtime="aoti", precision=self.precision,
                         details={"compiler": "torch._inductor.aoti_compile_and_package", "device": "cpu",
                                  "dynamic": ["batch", *request.axes], "compile_seconds": round(seconds, 1),
                                  "warnings": notes})]
