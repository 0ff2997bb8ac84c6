"""Accuracy-aware static int8: the layers that add the most error when quantized, found by comparing the fully
quantized graph with its fp32 source layer by layer on calibration images, are left in float.

Only convolutions and matrix products are candidates: they are where int8 kernels run, and leaving one out of
quantization also drops the QuantizeLinear/DequantizeLinear pairs around it. The cost of a layer is the
relative RMS error it adds beyond what it was fed (:class:`export_kit.explain.layers.LayerDiff`), so a layer
downstream of a bad one is not blamed for its input.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from export_kit.explain import taps
from export_kit.explain.core import compare_onnx
from export_kit.explain.layers import MIN_SNR_DB, costliest

#: Operators whose quantization decides int8 speed and accuracy.
COMPUTE_OPS = ("Conv", "Gemm", "MatMul")
#: Calibration images compared: enough for stable per-layer error, few enough to stay a second on the seed CNN.
SAMPLES = 64


def costliest_nodes(fp32: Path, quantized: Path, feeds: dict[str, np.ndarray], count: int) -> list[dict]:
    """The ``count`` quantized compute nodes adding the most error, worst first: node name, op, the tensor it
    writes and the error it adds."""
    proto, ref = taps.load(quantized), taps.load(fp32)
    made_by = taps.producers(proto)
    feeds = {k: v[:SAMPLES] for k, v in feeds.items()}
    rows, _ = compare_onnx(proto, ref, feeds, MIN_SNR_DB["int8"])
    compute = [r for r in rows if r.tensor in made_by and made_by[r.tensor].op_type in COMPUTE_OPS]
    return [{"node": made_by[r.tensor].name, "op": made_by[r.tensor].op_type, "tensor": r.tensor,
             "module": r.module, "added": round(r.added, 6)} for r in costliest(compute, count)]
