"""Planted faults: known defects made in a copy of a good folder, to prove verify catches each one.

Each fault damages one thing the way real defects do (a scaled weight, swapped classes, a baked batch size,
drifted preprocessing, changed or truncated bytes, NaN outputs, an int8 model that lost accuracy) and names the
check that must fail. Where a fault rewrites a file, it also rewrites the manifest's hash, so only the numbers
can give it away. ``exportkit selftest`` and the test suite run the same list, plus an untouched control.
"""

from __future__ import annotations

import json
import shutil
import stat
import tempfile
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from export_kit.datasets import Split
from export_kit.folder import ArtifactsFolder
from export_kit.golden import GOLDEN_NAME
from export_kit.manifest import MANIFEST_NAME, describe_file, load_manifest, resolve_inside
from export_kit.results import Status, StatusRecord
from export_kit.trust import Trust
from export_kit.verify import verify_folder


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


def drift_preprocessing(folder: Path) -> None:
    path = folder / "manifest.json"
    data = json.loads(path.read_text())
    data["preprocessing"]["mean"] = [m + 0.02 for m in data["preprocessing"]["mean"]]
    path.write_text(json.dumps(data, indent=2))


def change_bytes(folder: Path) -> None:
    path = folder / load_manifest(folder).artifact("torchscript").path
    data = bytearray(path.read_bytes())
    data[len(data) // 2] ^= 0xFF
    path.write_bytes(bytes(data))


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


def truncate(folder: Path) -> None:
    path = folder / load_manifest(folder).artifact("int8-onnx").path
    path.write_bytes(path.read_bytes()[: path.stat().st_size // 2])


def _edit_manifest(folder: Path, edit: Callable[[dict], None]) -> None:
    path = folder / MANIFEST_NAME
    data = json.loads(path.read_text())
    edit(data)
    path.write_text(json.dumps(data, indent=2))


def relabel_precision(folder: Path) -> None:
    """Declare the dynamic int8 ONNX file fp32: the manifest may not choose the tolerance class a file is held to."""
    _edit_manifest(folder, lambda d: next(a for a in d["artifacts"] if a["name"] == "int8-onnx").update(
        precision="fp32"))


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


def swap_class_names(folder: Path) -> None:
    def edit(data: dict) -> None:
        data["classes"][0], data["classes"][1] = data["classes"][1], data["classes"][0]

    _edit_manifest(folder, edit)


def forge_reference(folder: Path) -> None:
    """Shift every stored reference prediction by one class, golden hash rewritten: accuracy would then be
    compared against decisions the model never made."""
    manifest = load_manifest(folder)
    path = folder / manifest.golden["path"]
    with np.load(path) as npz:
        arrays = {k: npz[k] for k in npz.files}
    arrays["test_predictions"] = (arrays["test_predictions"] + 1) % len(manifest.classes)
    with open(path, "wb") as fh:
        np.savez(fh, **arrays)
    manifest.golden["sha256"] = describe_file(folder, manifest.golden["path"])[0]
    manifest.write(folder)


def unknown_operator(folder: Path) -> None:
    """A node no runtime implements: the file parses, but no session can be made from it."""

    def edit(proto):
        next(n for n in proto.graph.node if n.op_type == "Relu").op_type = "NoSuchOperator"

    edit_onnx(folder, "onnx", edit)


@dataclass(frozen=True)
class Fault:
    name: str
    artifact: str  # the artifact whose rows must fail; "*" for every artifact
    expect: tuple[str, ...]  # the checks that must all be among the failed ones
    apply: Callable[[Path], None]
    needs_data: bool = False


FAULTS = (
    Fault("weight scaled by 1.01", "onnx", ("parity_batch1", "parity_batch32"), scale_weight),
    Fault("two output classes swapped", "onnx", ("parity_batch32",), swap_classes),
    Fault("batch dimension baked to 1", "onnx", ("parity_batch32",), bake_batch),
    Fault("manifest mean/std drifted", "*", ("preprocessing",), drift_preprocessing),
    Fault("bytes changed after the manifest", "torchscript", ("integrity",), change_bytes),
    Fault("int8 accuracy below budget", "int8-onnx", ("accuracy",), zero_int8_layer, needs_data=True),
    Fault("NaN in the outputs", "int8-onnx", ("parity_batch32",), nan_output),
    Fault("file truncated in the middle", "int8-onnx", ("integrity",), truncate),
    Fault("int8 relabelled fp32 in the manifest", "int8-onnx", ("precision",), relabel_precision),
    Fault("int8 file in place of the fp32 one", "onnx", ("graph",), int8_as_fp32),
    Fault("weights moved to an unpinned file", "onnx", ("self_contained",), external_weights),
    Fault("class names swapped in the manifest", "*", ("consistency",), swap_class_names),
    Fault("stored reference predictions forged", "*", ("reference",), forge_reference, needs_data=True),
    Fault("operator no runtime implements", "onnx", ("load",), unknown_operator),
)


OUTCOMES = {"caught": Status.PASSED, "no false alarm": Status.PASSED, "missed": Status.FAILED,
            "false alarm": Status.FAILED, "skipped": Status.SKIPPED}


@dataclass
class FaultResult(StatusRecord):
    fault: str
    artifact: str
    expected_check: str  # the checks that must fail, comma-separated
    outcome: str  # caught | missed | skipped; for the control: no false alarm | false alarm
    failed_checks: list[str]
    detail: str = ""
    status: str = Status.SKIPPED

    def __post_init__(self) -> None:
        self.status = OUTCOMES[self.outcome]


def _failed(folder: Path, test: Split | None, trust: Trust) -> dict[str, list[str]]:
    rows = verify_folder(ArtifactsFolder.load(folder, trust), test, devices=("cpu",))
    return {r.artifact: r.failed_checks() for r in rows if r.status != Status.SKIPPED}


def _listed_files(source: ArtifactsFolder) -> list[str]:
    golden = source.manifest.golden
    return [MANIFEST_NAME, golden.get("path", GOLDEN_NAME), *dict(golden.get("plain") or {}).values(),
            *(a.path for a in source.manifest.artifacts)]


def copy_listed(source: ArtifactsFolder, dst: Path) -> None:
    """Copy the manifest and the files it lists, regular files only: a link or device planted in the folder
    (``notes.bin -> /dev/zero``) is never read, and nothing unlisted is copied."""
    for rel in dict.fromkeys(_listed_files(source)):
        if not isinstance(rel, str):
            continue
        src = resolve_inside(source.path, rel)
        if not (source.path / rel).exists() or (source.path / rel).is_symlink() or not stat.S_ISREG(src.stat().st_mode):
            continue  # missing or not a plain file: verify of the copy reports it as missing
        target = dst / rel
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(src, target, follow_symlinks=False)


def run_fault(source: ArtifactsFolder, fault: Fault, test: Split | None) -> FaultResult:
    """Damage a private copy of ``source`` with ``fault`` and report whether verify caught it. The copy is
    verified with the source's trust, which covers its code-bearing files only while their bytes are unchanged."""
    names = {a.name for a in source.manifest.artifacts}
    result = FaultResult(fault.name, fault.artifact, ", ".join(fault.expect), "skipped", [])
    if fault.artifact != "*" and fault.artifact not in names:
        result.detail = f"folder has no {fault.artifact} artifact"
        return result
    if fault.needs_data and test is None:
        result.detail = "needs the test data (--data-dir or --dataset)"
        return result
    with tempfile.TemporaryDirectory(prefix="exportkit-fault-") as work:
        copy = Path(work) / "artifacts"
        copy_listed(source, copy)
        fault.apply(copy)
        failed = _failed(copy, test, source.trust)
    targets = sorted(names) if fault.artifact == "*" else [fault.artifact]
    result.failed_checks = sorted({c for t in targets for c in failed.get(t, [])})
    caught = all(set(fault.expect) <= set(failed.get(t, [])) for t in targets)
    result.outcome = "caught" if caught else "missed"
    result.status = OUTCOMES[result.outcome]
    return result


def run_control(source: ArtifactsFolder, test: Split | None) -> FaultResult:
    """The negative control: the untouched folder must pass every check."""
    failed = {k: v for k, v in _failed(source.path, test, source.trust).items() if v}
    return FaultResult("control: untouched folder", "*", "(none)", "false alarm" if failed else "no false alarm",
                       sorted({c for v in failed.values() for c in v}),
                       detail=f"on {sorted(failed)}" if failed else "")
