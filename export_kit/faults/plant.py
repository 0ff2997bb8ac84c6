"""Planted faults: known defects made in a copy of a good folder, to prove verify catches each one.

Each fault damages one thing the way real defects do (a scaled weight, swapped classes, a baked batch size,
outputs wrong at some batch sizes only, drifted preprocessing, changed or truncated bytes, NaN outputs, an int8 model
that lost accuracy) and names the
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

from export_kit.faults.onnx import (
    bake_batch,
    external_weights,
    int8_as_fp32,
    nan_output,
    scale_weight,
    swap_classes,
    unknown_operator,
    wrong_above_batch32,
    wrong_off_the_traced_length,
    zero_int8_layer,
)
from export_kit.folder.golden import GOLDEN_NAME
from export_kit.folder.load import ArtifactsFolder
from export_kit.folder.manifest import MANIFEST_NAME, describe_file, load_manifest, resolve_inside
from export_kit.model.datasets import Split
from export_kit.results import Status, StatusRecord
from export_kit.safeio.trust import Trust
from export_kit.verification.run import verify_folder


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


@dataclass(frozen=True)
class Fault:
    name: str
    artifact: str  # the artifact whose rows must fail; "*" for every artifact
    expect: tuple[str, ...]  # the checks that must all be among the failed ones
    apply: Callable[[Path], None]
    needs_data: bool = False
    needs_images: bool = False  # it damages the image preprocessing, which a model without images lacks
    needs_axes: bool = False  # it needs a dynamic axis besides the batch (--input ...xseq=32...)
    needs_classifier: bool = False  # it damages class logits or names, which a --classifier none model lacks


FAULTS = (
    Fault("weight scaled by 1.01", "onnx", ("parity_batch1", "parity_batch32"), scale_weight),
    Fault("two output classes swapped", "onnx", ("parity_batch32",), swap_classes, needs_classifier=True),
    Fault("batch dimension baked to 1", "onnx", ("parity_batch32",), bake_batch),
    Fault("outputs wrong above batch 32 only", "onnx", ("parity_batches",), wrong_above_batch32),
    Fault("outputs wrong off the traced length", "onnx", ("parity_axes",), wrong_off_the_traced_length,
          needs_axes=True),
    Fault("manifest mean/std drifted", "*", ("preprocessing",), drift_preprocessing, needs_images=True),
    Fault("bytes changed after the manifest", "torchscript", ("integrity",), change_bytes),
    Fault("int8 accuracy below budget", "int8-onnx", ("accuracy",), zero_int8_layer, needs_data=True,
          needs_classifier=True),
    Fault("NaN in the outputs", "int8-onnx", ("parity_batch32",), nan_output, needs_classifier=True),
    Fault("file truncated in the middle", "int8-onnx", ("integrity",), truncate),
    Fault("int8 relabelled fp32 in the manifest", "int8-onnx", ("precision",), relabel_precision),
    Fault("int8 file in place of the fp32 one", "onnx", ("graph",), int8_as_fp32),
    Fault("weights moved to an unpinned file", "onnx", ("self_contained",), external_weights),
    Fault("class names swapped in the manifest", "*", ("consistency",), swap_class_names, needs_classifier=True),
    Fault("stored reference predictions forged", "*", ("reference",), forge_reference, needs_data=True,
          needs_classifier=True),
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
    plain = [rel for value in dict(golden.get("plain") or {}).values()
             for rel in (value if isinstance(value, list) else [value])]
    files = [p for a in source.manifest.artifacts for p in a.paths]
    return [MANIFEST_NAME, golden.get("path", GOLDEN_NAME), *plain, *files]


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
    if fault.needs_classifier and source.manifest.model_io.classifier is None:
        result.detail = "the model has no classifier output (--classifier none)"
        return result
    if fault.needs_data and test is None:
        result.detail = "needs the test data (--data-dir or --dataset)"
        return result
    if fault.needs_images and source.manifest.preprocessing is None:
        result.detail = "the model takes no images"
        return result
    if fault.needs_axes and not source.manifest.model_io.axes:
        result.detail = "the model has no dynamic axis besides the batch"
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


def selftest(source: ArtifactsFolder, test: Split | None) -> list[FaultResult]:
    """The control first (a correct copy must pass), then every planted fault (each must be caught)."""
    return [run_control(source, test)] + [run_fault(source, f, test) for f in FAULTS]


def selftest_failure(results: list[FaultResult]) -> str | None:
    """Why a selftest proved nothing, or None: a fault that passed or a control that failed are in the results;
    a folder where no fault could be planted is said here."""
    if not all(r.passed for r in results):
        return "a planted fault was not caught, or the correct copy failed"
    if all(r.status == "skipped" for r in results[1:]):
        return "no fault could be planted in this folder, so nothing was shown to be caught"
    return None
