"""Planted slowdowns: an ONNX artifact that computes exactly the same outputs with more work, to prove the
latency gate catches a real slowdown (and that such an artifact still passes verify, as a slower but correct
export would).

The extra work is copies of the graph's first convolution applied to the input, pooled, multiplied by a zero
matrix and added to the logits: each copy costs what that convolution costs, and adding exact zeros leaves every
output bit as it was. onnxruntime cannot prove the product is zero for an input it has not seen, so it keeps it.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from export_kit.faults import edit_onnx


def add_work(folder: Path, copies: int, channels: int | None = None, artifact: str = "onnx") -> None:
    """Give ``artifact`` ``copies`` extra convolutions (each with ``channels`` outputs, default as many as the first
    convolution) that do not change its outputs; the manifest is re-hashed."""
    if copies < 1 or (channels is not None and channels < 1):
        raise ValueError("copies and channels must be at least 1")
    edit_onnx(folder, artifact, lambda proto: _plant(proto, copies, channels))


def _plant(proto, copies: int, channels: int | None) -> None:
    from onnx import helper, numpy_helper

    graph = proto.graph
    conv = next(n for n in graph.node if n.op_type == "Conv")
    inits = {t.name: numpy_helper.to_array(t) for t in graph.initializer}
    weight = inits[conv.input[1]]
    weight = weight[:channels] if channels else weight
    classes = graph.output[0].type.tensor_type.shape.dim[1].dim_value
    logits = graph.output[0].name
    producer = next(n for n in graph.node if logits in n.output)
    producer.output[list(producer.output).index(logits)] = "planted_logits"
    rng = np.random.default_rng(0)
    graph.initializer.append(numpy_helper.from_array(np.zeros((weight.shape[0], classes), np.float32), "planted_zero"))
    summed = "planted_logits"
    for k in range(copies):
        w = f"planted_w{k}"
        graph.initializer.append(numpy_helper.from_array(rng.standard_normal(weight.shape).astype(np.float32), w))
        graph.node.extend([
            helper.make_node("Conv", [graph.input[0].name, w], [f"planted_c{k}"], name=f"planted_conv{k}",
                             **{a.name: helper.get_attribute_value(a) for a in conv.attribute}),
            helper.make_node("GlobalAveragePool", [f"planted_c{k}"], [f"planted_p{k}"]),
            helper.make_node("Flatten", [f"planted_p{k}"], [f"planted_f{k}"]),
            helper.make_node("MatMul", [f"planted_f{k}", "planted_zero"], [f"planted_z{k}"]),
            helper.make_node("Add", [summed, f"planted_z{k}"], [logits if k == copies - 1 else f"planted_s{k}"]),
        ])
        summed = f"planted_s{k}"
