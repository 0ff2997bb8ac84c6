"""Writing an artifacts folder: a clean output folder, golden vectors, every exporter, the reference checkpoint, and
the manifest last (then its signature), so a folder with a manifest is always a finished one.
"""

from __future__ import annotations

import shutil
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from export_kit.errors import PartialExportError, UnavailableError, UsageError, full_text, meaningful_line
from export_kit.exporters import EXPORTERS, ExportRequest, parse_formats
from export_kit.folder.golden import AXIS_SAMPLES, GOLDEN_NAME, AxisSet, Golden
from export_kit.folder.layout import REPORT_HTML, REPORT_JSON, REPORT_MD
from export_kit.folder.manifest import MANIFEST_NAME, Artifact, Manifest, describe_file
from export_kit.folder.precision import DEFAULT_TOLERANCES
from export_kit.folder.signing import SIGNATURE_NAME, sign_folder
from export_kit.model.datasets import Split
from export_kit.model.io import ModelIO, generate
from export_kit.model.outputs import flat_outputs, reference_top1
from export_kit.model.preprocessing import Preprocessing
from export_kit.progress import Log
from export_kit.safeio.atomic import PARTIAL_MARK, atomic_path

GOLDEN_COUNT = 250
#: Written into the manifest so apps in other languages check the golden vectors against the same bound.
FP32 = DEFAULT_TOLERANCES["fp32"]
DEFAULT_FORMATS = "onnx,torchscript,int8"
#: Added to the defaults when calibration images are at hand (static int8 needs them).
CALIBRATED_DEFAULT = "int8-static"
CHECKPOINT_NAME = "checkpoint.pt"


def prepare_out_dir(out: Path) -> Path:
    """Create ``out`` and remove the files that mark it complete, so a build interrupted from here on never
    leaves a folder that verifies as finished; temporary files a killed build left behind go too."""
    out = Path(out)
    if out.exists() and not out.is_dir():
        raise UsageError(f"--out {out} is a file; give a folder")
    try:
        out.mkdir(parents=True, exist_ok=True)
        for name in (MANIFEST_NAME, SIGNATURE_NAME, REPORT_JSON, REPORT_MD, REPORT_HTML):
            (out / name).unlink(missing_ok=True)
        for stale in out.glob(f".*{PARTIAL_MARK}*"):
            stale.unlink()
        probe = out / ".exportkit-write-test"
        probe.write_bytes(b"")
        probe.unlink()
    except OSError as exc:
        raise UsageError(f"--out {out} is not writable: {exc.strerror}") from None
    return out


def _golden_feed(prep: Preprocessing | None, test: Split | None, io: ModelIO, count: int):
    """Pixels, model inputs, labels and the whole split: balanced real test images when there are some, else
    seeded random pixels (image models) or seeded values from each input's domain."""
    none = Split(np.zeros((0, 1, 1, 1), np.uint8), np.empty(0, np.int64))
    if prep is None:
        return np.zeros((0,), np.uint8), generate(io.inputs, count), np.full(count, -1, np.int64), none
    if test is None:
        channels, height, width = prep.chw(io.inputs[0].shape)
        pixels = np.random.default_rng(0).integers(0, 256, (count, height, width, channels), dtype=np.uint8)
        return pixels, [prep.normalize(pixels)], np.full(count, -1, np.int64), none
    picked = test.balanced(count)
    pixels = prep.pixels(picked.images)  # stored in the model's colour mode, so apps need no conversion
    return pixels, [prep.normalize(pixels)], picked.labels, test


def make_golden(model, prep: Preprocessing | None, test: Split | None, io: ModelIO,
                count: int = GOLDEN_COUNT) -> Golden:
    """Reference outputs on ``count`` golden samples (:func:`_golden_feed`), and the reference's top-1 on the
    whole test split."""

    pixels, inputs, labels, whole = _golden_feed(prep, test, io, count)
    outputs = _reference_outputs(model, inputs, len(io.outputs))
    preds = (reference_top1(model, prep, whole, io.classifier) if prep and io.classifier is not None
             else np.empty(0, np.int64))
    return Golden(pixels, inputs, outputs, labels, preds, whole.labels.astype(np.int64), io.classifier,
                  _axis_sets(model, io))


def _reference_outputs(model, inputs: list[np.ndarray], count: int) -> list[np.ndarray]:
    import torch

    with torch.inference_mode():
        chunks = [flat_outputs(model(*(torch.from_numpy(x[i:i + 50]) for x in inputs)))
                  for i in range(0, len(inputs[0]), 50)]
    return [np.concatenate([c[k].float().numpy() for c in chunks]) for k in range(count)]


def _axis_sets(model, io: ModelIO) -> list[AxisSet]:
    """Reference outputs with each dynamic axis at each size of its spread (the other axes at their example size),
    on seeded inputs: what verify checks the axis with."""
    sets = []
    for name, axis in sorted(io.axes.items()):
        for size in axis.spread():
            sizes = {n: a.example for n, a in io.axes.items()} | {name: size}
            inputs = generate(io.inputs, AXIS_SAMPLES, seed=len(sets) + 1, sizes=sizes)
            sets.append(AxisSet(sizes, inputs, _reference_outputs(model, inputs, len(io.outputs))))
    return sets


def _export_all(request: ExportRequest, formats: Sequence[str], log: Log) -> tuple[list[Artifact], list[dict]]:
    """Run each exporter; a failing format becomes a failure entry and the others still build."""
    artifacts, failures = [], []
    for name in formats:
        log(f"exporting {name}")
        try:
            made = EXPORTERS[name]().export(request)
        except PartialExportError as exc:
            made = exc.made
            failures.append({"format": name, "stage": "export", "reason": str(exc), "details": full_text(exc)})
            log(f"{name}: export failed in part: {exc}")
        except UnavailableError as exc:
            failures.append({"format": name, "stage": "export", "status": "unavailable", "reason": str(exc)})
            log(f"{name}: unavailable: {exc}")
            continue
        except Exception as exc:
            reason = meaningful_line(exc)
            failures.append({"format": name, "stage": "export", "reason": reason, "details": full_text(exc)})
            log(f"{name}: export failed: {reason}")
            continue
        for art in made:
            art.describe(request.out_dir)
        artifacts += made
    return artifacts, failures


def _reference_artifact(out: Path, checkpoint: Path | None) -> list[Artifact]:
    """The checkpoint, copied into the folder, is the eager reference that verify and bench rebuild."""
    if checkpoint is None:
        return []
    target = out / CHECKPOINT_NAME
    if Path(checkpoint).resolve() != target.resolve():
        with atomic_path(target) as tmp:
            shutil.copyfile(checkpoint, tmp)
    sha, size = describe_file(out, CHECKPOINT_NAME)
    return [Artifact(name="pytorch", format="pytorch", path=CHECKPOINT_NAME, runtime="eager", precision="fp32",
                     sha256=sha, bytes=size, details={"role": "reference"})]


def export_folder(request: ExportRequest, formats: Sequence[str], *, preprocessing: Preprocessing | None,
                  classes: Sequence[str], test: Split | None, checkpoint: Path | None, model_info: dict,
                  golden_count: int, log: Log) -> Manifest:
    """Write golden vectors and every artifact into ``request.out_dir``, then the manifest, last. ``request.io``
    describes the model; ``preprocessing`` is None for a model that takes no images."""
    out, io = request.out_dir, request.io
    golden = make_golden(request.model, preprocessing, test, io, golden_count)
    golden.save(out / GOLDEN_NAME)
    plain = golden.save_plain(out)
    artifacts, failures = _export_all(request, formats, log)
    described = io.to_dict()
    manifest = Manifest(
        input={**{k: v for k, v in described["inputs"][0].items() if k != "domain"},
               **({"layout": preprocessing.layout} if preprocessing else {})},
        output={k: v for k, v in described["outputs"][io.headline].items() if k != "classifier"},
        inputs=described["inputs"], outputs=described["outputs"], preprocessing=preprocessing,
        classes=list(classes), model=dict(model_info),
        artifacts=_reference_artifact(out, checkpoint) + artifacts, failures=failures,
        golden={"path": GOLDEN_NAME, "sha256": describe_file(out, GOLDEN_NAME)[0], "count": len(golden.labels),
                "plain": plain, "fp32_tolerance": {"max_abs": FP32.max_abs, "min_cosine": FP32.min_cosine},
                "tolerances": {name: {"max_abs": t.max_abs, "min_cosine": t.min_cosine,
                                      "min_top1_agreement": t.min_top1_agreement}
                               for name, t in DEFAULT_TOLERANCES.items()}})
    manifest.write(out)
    sign_folder(out)
    return manifest


def resolve_formats(formats: Sequence[str] | str | None, calibration: Split | None) -> list[str]:
    """None means the defaults, decided here only: onnx, torchscript, int8, and int8-static with calibration."""
    if formats is None:
        return parse_formats(DEFAULT_FORMATS) + ([CALIBRATED_DEFAULT] if calibration is not None else [])
    return parse_formats(formats) if isinstance(formats, str) else list(formats)
