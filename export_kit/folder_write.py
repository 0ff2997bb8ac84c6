"""Writing an artifacts folder: a clean output folder, golden vectors, every exporter, the reference checkpoint, and
the manifest last (then its signature), so a folder with a manifest is always a finished one.
"""

from __future__ import annotations

import shutil
from collections.abc import Callable, Sequence
from pathlib import Path

import numpy as np

from export_kit.compare import DEFAULT_TOLERANCES
from export_kit.datasets import Split
from export_kit.errors import UnavailableError, UsageError, first_line
from export_kit.exporters import EXPORTERS, ExportRequest, parse_formats
from export_kit.fileio import PARTIAL_MARK, atomic_path
from export_kit.golden import GOLDEN_NAME, Golden
from export_kit.manifest import MANIFEST_NAME, Artifact, Manifest, describe_file
from export_kit.preprocessing import Preprocessing
from export_kit.report import REPORT_HTML, REPORT_JSON, REPORT_MD
from export_kit.signing import SIGNATURE_NAME, sign_folder

GOLDEN_COUNT = 250
#: Written into the manifest so apps in other languages check the golden vectors against the same bound.
FP32 = DEFAULT_TOLERANCES["fp32"]
DEFAULT_FORMATS = "onnx,torchscript,int8"
#: Added to the defaults when calibration images are at hand (static int8 needs them).
CALIBRATED_DEFAULT = "int8-static"
CHECKPOINT_NAME = "checkpoint.pt"
Log = Callable[[str], None]


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


def make_golden(model, prep: Preprocessing, test: Split | None, example, count: int = GOLDEN_COUNT) -> Golden:
    """Reference logits on ``count`` balanced real test images (random pixels when no test split is given),
    and the reference's top-1 on the whole test split."""
    import torch

    if test is None:
        rng = np.random.default_rng(0)
        images = rng.integers(0, 256, (count, *example.shape[2:], example.shape[1]), dtype=np.uint8)
        picked = Split(images, np.full(count, -1, np.int64))
        whole = Split(images[:0], np.empty(0, np.int64))
    else:
        picked, whole = test.balanced(count), test
    pixels = prep.pixels(picked.images)  # stored in the model's colour mode, so apps need no conversion
    inputs = prep.apply(pixels)
    with torch.inference_mode():
        logits = np.concatenate([model(torch.from_numpy(inputs[i:i + 50])).numpy() for i in range(0, count, 50)])
        preds = [model(torch.from_numpy(prep.apply(whole.images[i:i + 500]))).argmax(1).numpy()
                 for i in range(0, len(whole), 500)]
    return Golden(pixels, inputs, logits.astype(np.float32), picked.labels,
                  np.concatenate(preds).astype(np.int64) if preds else np.empty(0, np.int64),
                  whole.labels.astype(np.int64))


def _export_all(request: ExportRequest, formats: Sequence[str], log: Log) -> tuple[list[Artifact], list[dict]]:
    """Run each exporter; a failing format becomes a failure entry and the others still build."""
    artifacts, failures = [], []
    for name in formats:
        log(f"exporting {name}")
        try:
            made = EXPORTERS[name]().export(request)
        except UnavailableError as exc:
            failures.append({"format": name, "stage": "export", "status": "unavailable", "reason": str(exc)})
            log(f"{name}: unavailable: {exc}")
            continue
        except Exception as exc:
            reason = first_line(exc)
            failures.append({"format": name, "stage": "export", "reason": reason})
            log(f"{name}: export failed: {reason}")
            continue
        for art in made:
            art.sha256, art.bytes = describe_file(request.out_dir, art.path)
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


def export_folder(request: ExportRequest, formats: Sequence[str], *, preprocessing: Preprocessing,
                  classes: Sequence[str], test: Split | None, checkpoint: Path | None, model_info: dict,
                  golden_count: int, log: Log) -> Manifest:
    """Write golden vectors and every artifact into ``request.out_dir``, then the manifest, last."""
    out = request.out_dir
    golden = make_golden(request.model, preprocessing, test, request.example, golden_count)
    golden.save(out / GOLDEN_NAME)
    plain = golden.save_plain(out)
    artifacts, failures = _export_all(request, formats, log)
    manifest = Manifest(
        input={"name": request.input_name, "shape": ["batch", *request.example.shape[1:]], "dtype": "float32",
               "layout": "NCHW"},
        output={"name": request.output_name, "shape": ["batch", len(classes)], "dtype": "float32"},
        preprocessing=preprocessing, classes=list(classes), model=dict(model_info),
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
