"""The ONNX edits planted faults are made of: a weight scaled, classes swapped, a batch size baked in, a layer
zeroed, a NaN bias, a file swapped, weights moved out, an operator no runtime knows, an output wrong above batch 32.

Each rewrites the manifest's hash of the file it changes, so only verify's numbers can give the damage away.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

from export_kit.folder.manifest import describe_file, load_manifest


def edit_onnx(folder: Path, name: str, edit: Callable) -> None:
    """Apply ``edit(model_proto)`` to an ONNX artifact and re-hash it in the manifest."""
    import onnx

    manifest = load_manifest(folder)
    art = manifest.artifact(name)
    proto = onnx.load(str(folder / art.path))
    edit(proto)
    onnx.save(proto, str(folder / art.path))
    art.sha256, art.bytes = describe_file(folder, art.path)
    manifest.write(folder)


def _replace(proto, init, array: np.ndarray) -> None:
    from onnx import numpy_helper

    init.CopyFrom(numpy_helper.from_array(array.astype(numpy_helper.to_array(init).dtype), init.name))


def _largest(proto):
    return max(proto.graph.initializer, key=lambda t: int(np.prod(t.dims)))


def _final_layer(proto):
    """Weight and bias initializers of the last Gemm/MatMul node (the classifier)."""
    from onnx import numpy_helper

    inits = {t.name: t for t in proto.graph.initializer}
    node = [n for n in proto.graph.node if n.op_type in ("Gemm", "MatMul")][-1]
    weight = next(inits[i] for i in node.input if i in inits and len(inits[i].dims) == 2)
    bias = next((t for t in proto.graph.initializer if len(t.dims) == 1 and
                 t.dims[0] == numpy_helper.to_array(weight).shape[0 if node.op_type == "Gemm" else 1]), None)
    return node, weight, bias


def scale_weight(folder: Path) -> None:
    from onnx import numpy_helper

    edit_onnx(folder, "onnx", lambda p: _replace(p, _largest(p), numpy_helper.to_array(_largest(p)) * 1.01))


def swap_classes(folder: Path) -> None:
    from onnx import numpy_helper

    def edit(proto):
        node, weight, bias = _final_layer(proto)
        axis = 0 if node.op_type == "Gemm" else 1  # Gemm(transB=1) stores (out, in); MatMul stores (in, out)
        w = numpy_helper.to_array(weight).copy()
        w = np.swapaxes(w, 0, axis)
        w[[0, 1]] = w[[1, 0]]
        _replace(proto, weight, np.swapaxes(w, 0, axis))
        if bias is not None:
            b = numpy_helper.to_array(bias).copy()
            b[[0, 1]] = b[[1, 0]]
            _replace(proto, bias, b)

    edit_onnx(folder, "onnx", edit)


def bake_batch(folder: Path) -> None:
    def edit(proto):
        for value in (*proto.graph.input, *proto.graph.output):
            value.type.tensor_type.shape.dim[0].dim_value = 1

    edit_onnx(folder, "onnx", edit)


def zero_int8_layer(folder: Path) -> None:
    from onnx import numpy_helper

    edit_onnx(folder, "int8-onnx", lambda p: _replace(p, _largest(p), numpy_helper.to_array(_largest(p)) * 0))


def nan_output(folder: Path) -> None:
    """Poison one class's bias in the int8 model: int8 has no logit bound, so only the NaN rule can catch it."""
    from onnx import TensorProto, numpy_helper

    classes = len(load_manifest(folder).classes)

    def edit(proto):
        bias = [t for t in proto.graph.initializer if t.data_type == TensorProto.FLOAT and list(t.dims) == [classes]]
        b = numpy_helper.to_array(bias[-1]).copy()
        b[3] = np.nan
        _replace(proto, bias[-1], b)

    edit_onnx(folder, "int8-onnx", edit)


def int8_as_fp32(folder: Path) -> None:
    """The int8 file copied over the fp32 ONNX file, hash rewritten: only the graph's operators give it away."""
    manifest = load_manifest(folder)
    (folder / manifest.artifact("onnx").path).write_bytes((folder / manifest.artifact("int8-onnx").path).read_bytes())
    art = manifest.artifact("onnx")
    art.sha256, art.bytes = describe_file(folder, art.path)
    manifest.write(folder)


def external_weights(folder: Path) -> None:
    import onnx

    manifest = load_manifest(folder)
    art = manifest.artifact("onnx")
    onnx.save(onnx.load(str(folder / art.path)), str(folder / art.path), save_as_external_data=True,
              location="weights.bin", size_threshold=0)
    art.sha256, art.bytes = describe_file(folder, art.path)
    manifest.write(folder)


def unknown_operator(folder: Path) -> None:
    """A node no runtime implements: the file parses, but no session can be made from it."""

    def edit(proto):
        next(n for n in proto.graph.node if n.op_type == "Relu").op_type = "NoSuchOperator"

    edit_onnx(folder, "onnx", edit)


def _bump_when(folder: Path, condition: Callable[[Any], list], constants: dict[str, int]) -> None:
    """Add 0.5 to the first value of each sample of the ONNX artifact's first output (of any rank: logits, a
    segmentation map, a detection head) wherever the boolean tensor ``fault_when`` (made by the nodes
    ``condition(graph)`` returns, from the int64 ``constants``) is true."""
    from onnx import TensorProto, helper

    def edit(proto):
        graph = proto.graph
        output = graph.output[0].name
        raw = f"{output}__before_fault"
        for node in graph.node:
            node.output[:] = [raw if o == output else o for o in node.output]
        sample = [d.dim_value or 1 for d in graph.output[0].type.tensor_type.shape.dim[1:]]  # a named axis: 1
        bump = np.zeros((1, *sample), np.float32)
        bump.flat[0] = 0.5
        graph.initializer.extend([helper.make_tensor("fault_bump", TensorProto.FLOAT, bump.shape, bump.ravel()),
                                  *(helper.make_tensor(k, TensorProto.INT64, [1], [v]) for k, v in constants.items())])
        graph.node.extend([
            *condition(graph),
            helper.make_node("Cast", ["fault_when"], ["fault_on"], to=TensorProto.FLOAT),
            helper.make_node("Mul", ["fault_on", "fault_bump"], ["fault_delta"]),
            helper.make_node("Add", [raw, "fault_delta"], [output])])

    edit_onnx(folder, "onnx", edit)


def wrong_off_the_traced_length(folder: Path) -> None:
    """Add 0.5 to the first output column whenever the first dynamic axis besides the batch is not at its traced
    size: right on every golden input and at every batch size, wrong at any other length (a length baked into a
    graph that still accepts others)."""
    from onnx import helper

    spec = next(s for s in load_manifest(folder).model_io.inputs if any(s.axis_names))
    dim = next(k for k, n in enumerate(spec.axis_names) if n)
    _bump_when(folder, lambda graph: [
        helper.make_node("Shape", [spec.name], ["fault_length"], start=dim + 1, end=dim + 2),
        helper.make_node("Equal", ["fault_length", "fault_traced"], ["fault_same"]),
        helper.make_node("Not", ["fault_same"], ["fault_when"])], {"fault_traced": spec.shape[dim]})


def wrong_above_batch32(folder: Path) -> None:
    """Add 0.5 to the first output column only when the batch holds more than 32 samples: right at batch 1 and
    32, the sizes a fixed-size check uses, wrong at 61 (a kernel that switches strategy on large batches)."""
    from onnx import helper

    _bump_when(folder, lambda graph: [
        helper.make_node("Shape", [graph.input[0].name], ["fault_shape"], start=0, end=1),
        helper.make_node("Greater", ["fault_shape", "fault_32"], ["fault_when"])], {"fault_32": 32})
