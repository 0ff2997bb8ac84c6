"""Planted slowdowns: an ONNX artifact that computes exactly the same outputs with more work, to prove the
latency gate catches a real slowdown (and that such an artifact still passes verify, as a slower but correct
export would).

The extra work is a detour on the logits: a product with a random ``classes x width`` matrix, then with a zero
``width x classes`` matrix, added back. Its cost grows smoothly with ``width``; adding exact zeros leaves every
output bit as it was, and onnxruntime cannot prove the product is zero for an input it has not seen, so it keeps
it. (Extra convolutions of the input were tried first: even a one-channel one cost this CNN 80%, because the
input then feeds two nodes and the graph optimizer lays it out differently, so their cost could not be chosen.)
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from export_kit.faults.onnx import edit_onnx


def add_work(folder: Path, width: int, artifact: str = "onnx") -> None:
    """Give ``artifact`` a detour of ``width`` columns that does not change its outputs; the manifest is re-hashed."""
    if width < 1:
        raise ValueError("width must be at least 1")
    edit_onnx(folder, artifact, lambda proto: _plant(proto, width))


def _plant(proto, width: int) -> None:
    from onnx import helper, numpy_helper

    graph = proto.graph
    logits = graph.output[0].name
    classes = graph.output[0].type.tensor_type.shape.dim[1].dim_value
    producer = next(n for n in graph.node if logits in n.output)
    producer.output[list(producer.output).index(logits)] = "planted_logits"
    weight = np.random.default_rng(0).standard_normal((classes, width)).astype(np.float32)
    graph.initializer.extend([numpy_helper.from_array(weight, "planted_weight"),
                              numpy_helper.from_array(np.zeros((width, classes), np.float32), "planted_zero")])
    graph.node.extend([
        helper.make_node("MatMul", ["planted_logits", "planted_weight"], ["planted_hidden"], name="planted_wide"),
        helper.make_node("MatMul", ["planted_hidden", "planted_zero"], ["planted_nothing"], name="planted_zero"),
        helper.make_node("Add", ["planted_logits", "planted_nothing"], [logits], name="planted_add"),
    ])
