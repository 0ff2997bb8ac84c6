"""What an ONNX file says about itself, held against what the manifest claims for it.

A folder edited by hand (or by an attacker who updates the hashes) can relabel an int8 file as fp32, swap the
class names, or move the weights into an unlisted file. Parity against the folder's own golden vectors cannot see
that; the graph can: its operators reveal its precision, its ``metadata_props`` carry the build's classes and
preprocessing, and its initializers say whether their bytes live in this file.
"""

from __future__ import annotations

import json
from pathlib import Path

from export_kit.folder.manifest import Artifact, Manifest
from export_kit.results import Check
from export_kit.verification.checks import CheckSpec, VerifyContext, register_check

#: Operators that only a quantized graph has.
QUANTIZED_OPS = frozenset({"QuantizeLinear", "DequantizeLinear", "DynamicQuantizeLinear", "ConvInteger",
                           "MatMulInteger", "QLinearConv", "QLinearMatMul", "QGemm", "QLinearAdd", "QLinearMul",
                           "DynamicQuantizeMatMul", "MatMulIntegerToFloat"})


def _ops(graph) -> set[str]:
    found = set()
    for node in graph.node:
        found.add(node.op_type)
        for attr in node.attribute:
            if attr.g is not None and attr.g.node:
                found |= _ops(attr.g)
    return found


def _precision_problem(proto, precision: str) -> str | None:
    from onnx import TensorProto

    ops = _ops(proto.graph)
    half = any(t.data_type == TensorProto.FLOAT16 for t in proto.graph.initializer)
    quantized = sorted(ops & QUANTIZED_OPS)
    if precision == "int8" and not quantized:
        return "declared int8 but the graph has no quantized operator"
    if precision != "int8" and quantized:
        return f"declared {precision} but the graph has quantized operators ({', '.join(quantized[:4])})"
    if precision == "fp16" and not half:
        return "declared fp16 but no weight is float16"
    if precision == "fp32" and half:
        return "declared fp32 but weights are float16"
    return None


def _metadata_problems(proto, manifest: Manifest) -> list[str]:
    props = {p.key: p.value for p in proto.metadata_props}
    problems = []
    expected = {"exportkit.classes": list(manifest.classes),
                "exportkit.preprocessing": manifest.preprocessing.to_dict() if manifest.preprocessing else None}
    for key, want in expected.items():
        if key not in props:
            continue
        try:
            found = json.loads(props[key])
        except ValueError:
            found = props[key]
        if found != want:
            problems.append(f"the file's {key.split('.')[1]} differ from the manifest's")
    return problems


def _input_problem(proto, manifest: Manifest) -> str | None:
    """The graph's inputs (count, fixed dimensions after the batch axis, named axes left dynamic) against the
    manifest's."""
    weights = {t.name for t in proto.graph.initializer}
    inputs = [i for i in proto.graph.input if i.name not in weights]
    specs = manifest.model_io.inputs
    if len(inputs) != len(specs):
        return f"the graph has {len(inputs)} input(s), the manifest {len(specs)}"
    for graph_input, spec in zip(inputs, specs, strict=True):
        dims = [d.dim_value if d.HasField("dim_value") else None for d in graph_input.type.tensor_type.shape.dim]
        expected = list(spec.shape)
        if len(dims) != len(expected) + 1 or any(d is not None and d != e for d, e in zip(dims[1:], expected,
                                                                                           strict=True)):
            return f"the graph's input shape {dims} does not fit the manifest's [batch, {expected}]"
        fixed = [n for d, n in zip(dims[1:], spec.axis_names, strict=True) if n and d is not None]
        if fixed:
            return f"the graph fixes the size of {spec.name}'s axis {fixed[0]}, which the manifest declares dynamic"
    return None


def onnx_checks(path: Path, artifact: Artifact, manifest: Manifest) -> list[Check]:
    """``self_contained`` (no weights in unpinned files: a row stops there, nothing loads them) and ``graph``
    (declared precision, input shape and embedded metadata against the manifest)."""
    import onnx

    try:
        proto = onnx.load(str(path), load_external_data=False)
    except Exception as exc:
        return [Check("self_contained", False, detail=f"not a readable ONNX file ({type(exc).__name__})")]
    external = [t.name for t in proto.graph.initializer if t.data_location == onnx.TensorProto.EXTERNAL]
    contained = Check("self_contained", not external, observed=len(external), detail="" if not external else (
        f"{len(external)} weight(s) live in external files the manifest does not pin (e.g. {external[0]!r}); "
        "exportkit artifacts are one self-contained file"))
    problems = [*filter(None, [_precision_problem(proto, artifact.precision), _input_problem(proto, manifest)]),
                *_metadata_problems(proto, manifest)]
    return [contained, Check("graph", not problems, observed=artifact.precision, detail="; ".join(problems))]


def _loaded(ctx: VerifyContext, artifact: Artifact) -> list[Check]:
    if not artifact.path.endswith(".onnx"):
        return []
    return onnx_checks(ctx.folder.file(artifact), artifact, ctx.folder.manifest)


register_check(CheckSpec("self_contained", "artifact", "file", "ONNX: no weights in external files (the manifest "
                         "pins one file)", _loaded, blocking=True))
register_check(CheckSpec("graph", "artifact", "file", "ONNX: quantized operators only in int8 files, float16 weights "
                         "only in fp16 ones, input shape and embedded classes and preprocessing as in the manifest"))
