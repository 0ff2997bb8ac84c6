"""Every intermediate float tensor of an ONNX graph made a graph output, so one onnxruntime run returns them all.

Marking a tensor as an output keeps onnxruntime from fusing away the node that makes it, so a tapped run can
differ from the artifact's own run where a fusion is the culprit: explain compares the tapped and untapped final
outputs and says so when they differ (:func:`untapped_drift`).
"""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path

import numpy as np

from export_kit.errors import ExportKitError, first_line

#: ONNX element types compared layer by layer: float, float16, double, bfloat16. Integer tensors (quantized
#: activations, shapes) have no counterpart in the float reference.
FLOAT_TYPES = (1, 10, 11, 16)


class TapError(ExportKitError):
    """The artifact's graph cannot be run with its intermediate tensors exposed (exit 3: the file is at fault)."""


def load(path: Path):
    import onnx

    return onnx.load(str(path))


def float_tensors(proto) -> dict[str, int]:
    """Name -> element type of every float tensor a node produces, in graph (topological) order."""
    import onnx

    try:
        inferred = onnx.shape_inference.infer_shapes(proto)
    except onnx.shape_inference.InferenceError as exc:
        raise TapError(f"ONNX shape inference failed, so its tensors' types are unknown: {first_line(exc)}") from None
    types = {v.name: v.type.tensor_type.elem_type
             for v in (*inferred.graph.value_info, *inferred.graph.output, *inferred.graph.input)}
    found: dict[str, int] = {}
    for node in proto.graph.node:
        for name in node.output:
            if name and types.get(name) in FLOAT_TYPES:
                found[name] = types[name]
    return found


def tapped(proto, names: Iterable[str]):
    """A copy of ``proto`` whose outputs are its own plus ``names`` (each with its inferred element type)."""
    import onnx

    copy = onnx.ModelProto()
    copy.CopyFrom(proto)
    types = float_tensors(proto)
    present = {o.name for o in copy.graph.output}
    for name in names:
        if name not in present:
            copy.graph.output.append(onnx.helper.make_tensor_value_info(name, types[name], None))
    return copy


def run(proto, feeds: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
    """Run ``proto`` once on the CPU provider with ``feeds``; every graph output by name."""
    return run_file(proto.SerializeToString(), feeds)


def run_file(model: bytes | Path, feeds: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
    """Run an ONNX or ORT-format model (its bytes, or a file) once on the CPU provider; every output by name."""
    import onnxruntime as ort

    opts = ort.SessionOptions()
    opts.log_severity_level = 3
    try:  # onnxruntime's own exception classes derive from Exception only
        session = ort.InferenceSession(model if isinstance(model, bytes) else str(model), sess_options=opts,
                                       providers=["CPUExecutionProvider"])
        names = [o.name for o in session.get_outputs()]
        return dict(zip(names, session.run(names, feeds), strict=True))
    except Exception as exc:
        raise TapError(f"onnxruntime could not run the graph with its tensors exposed: {first_line(exc)}") from None


def producers(proto) -> dict[str, object]:
    """Tensor name -> the node that writes it."""
    return {name: node for node in proto.graph.node for name in node.output if name}


def nearest_upstream(proto, tensor: str, marked: set[str]) -> set[str]:
    """The marked tensors closest above ``tensor`` (walking node inputs until a marked one or a graph input), so
    the error a layer adds can be told from the error it was fed."""
    made_by = producers(proto)
    graph_inputs = {i.name for i in proto.graph.input}
    found: set[str] = set()
    seen: set[str] = set()
    stack = list(made_by[tensor].input) if tensor in made_by else []
    while stack:
        name = stack.pop()
        if not name or name in seen:
            continue
        seen.add(name)
        if name in marked or name in graph_inputs:
            found.add(name)
        elif name in made_by:
            stack.extend(made_by[name].input)
    return found


def scopes(node) -> list[str]:
    """The module path of a node written by torch.onnx's dynamo exporter (its ``name_scopes`` metadata, outermost
    first, the last entry being the FX node's own name), or [] where a tool made the node."""
    import ast

    for entry in node.metadata_props:
        if entry.key == "pkg.torch.onnx.name_scopes":
            try:
                value = ast.literal_eval(entry.value)
            except (ValueError, SyntaxError):
                return []
            return [s for s in value[:-1] if isinstance(s, str) and s] if isinstance(value, list) else []
    return []


def dequantized(proto) -> dict[str, str]:
    """Tensor -> the DequantizeLinear output its consumers read, where a QDQ quantizer put a QuantizeLinear/
    DequantizeLinear pair after it: that is the value the rest of the graph sees (the quantizer also drops a ReLU
    into the pair's clipping, so the tensor itself can hold what the ReLU would have removed)."""
    consumers: dict[str, list] = {}
    for node in proto.graph.node:
        for name in node.input:
            consumers.setdefault(name, []).append(node)
    found = {}
    for name in producers(proto):
        quant = [n for n in consumers.get(name, []) if n.op_type == "QuantizeLinear" and n.input[0] == name]
        deq = [d for q in quant for d in consumers.get(q.output[0], []) if d.op_type == "DequantizeLinear"]
        if deq:
            found[name] = deq[0].output[0]
    return found


def run_as_ort_format(proto, feeds: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
    """Convert ``proto`` to ORT format with the converter and settings the ``ort`` artifact was made with, and run
    that: an ORT-format file cannot be edited, so its tensors are exposed in the ONNX file it came from first."""
    import tempfile

    from export_kit.runners.ort_runner import convert

    with tempfile.TemporaryDirectory(prefix="exportkit-explain-ort-") as work:
        source = Path(work) / "tapped.onnx"
        source.write_bytes(proto.SerializeToString())
        model, _ = convert(source, Path(work))
        return run_file(model, feeds)
