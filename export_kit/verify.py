"""Parity and accuracy for every artifact x target, each check held to its precision's tolerance.

Every failure is collected with its numbers; nothing is downgraded to a warning. Parity runs on the golden
vectors (real test images) twice: one image per call, and batches of :data:`BATCH` (a graph whose batch size
was baked in by tracing fails the second). With a dataset, accuracy on its whole test split is added.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import replace

import numpy as np

from export_kit.compare import Tolerance, parity
from export_kit.datasets import Split
from export_kit.errors import DataError, UnavailableError, first_line
from export_kit.folder import ArtifactsFolder
from export_kit.golden import Golden
from export_kit.graphcheck import onnx_graph_checks
from export_kit.manifest import Artifact
from export_kit.metrics import classification_summary
from export_kit.results import Check, VerifyResult
from export_kit.runners import Runner, Target, targets_for, unavailable_reason
from export_kit.stats import mcnemar_exact, per_class_accuracy, wilson_interval
from export_kit.tolerances import Overrides, tolerance_for

BATCH = 32
SINGLE_SAMPLES = 64


def agreement_below(agreement: float, samples: int, budget: float) -> bool:
    """True when the observed agreement is below ``budget`` beyond sampling noise (95% Wilson upper bound).

    A budget of 1.0 still fails on a single disagreement; a 97% budget is not declared broken by 3 of 64.
    """
    agreed = round(agreement * samples)
    return agreed < samples and wilson_interval(agreed, samples)[1] < budget


def _run_batched(runner: Runner, inputs: np.ndarray, batch: int) -> np.ndarray:
    return np.concatenate([runner.run_one(inputs[i:i + batch]) for i in range(0, len(inputs), batch)])


def _parity_check(name: str, reference: np.ndarray, produce: Callable[[], np.ndarray], tol: Tolerance,
                  row: VerifyResult) -> None:
    try:
        got = produce()
    except Exception as exc:
        row.add(Check(name, False, detail=f"runtime error: {first_line(exc)}"))
        return
    p = parity(reference, got)
    problems = []
    if p.nonfinite:
        problems.append(f"{p.nonfinite}/{p.samples} outputs are NaN or inf")
    if tol.max_abs is not None and not p.max_abs_err <= tol.max_abs:
        problems.append(f"max abs error {p.max_abs_err:.3g} > {tol.max_abs:g}")
    if tol.min_cosine is not None and not p.cosine >= tol.min_cosine:
        problems.append(f"worst-sample cosine similarity {p.cosine:.6f} < {tol.min_cosine:g}")
    if agreement_below(p.top1_agreement, p.samples, tol.min_top1_agreement):
        problems.append(f"top-1 agreement {p.top1_agreement:.4f} on {p.samples} images is significantly below "
                        f"{tol.min_top1_agreement:g}")
    row.add(Check(name, not problems, observed=p.to_dict(), limit=tol.to_dict(), detail="; ".join(problems)))
    row.observe("max_abs", p.max_abs_err, max)
    row.observe("min_top1_agreement", p.top1_agreement, min)
    row.observe("min_cosine", p.cosine, min)
    if name.endswith(f"batch{BATCH}") or row.max_abs_err is None:
        row.max_abs_err, row.p99_abs_err, row.cosine, row.top1_agreement = (
            p.max_abs_err, p.p99_abs_err, p.cosine, p.top1_agreement)


def _accuracy_stats(row: VerifyResult, predictions: np.ndarray, golden: Golden, test: Split) -> float:
    """Accuracy with its 95% interval, McNemar against the reference, per-class deltas; returns the drop."""
    ref_correct, correct = golden.test_predictions == test.labels, predictions == test.labels
    row.accuracy, row.reference_accuracy = float(correct.mean()), float(ref_correct.mean())
    row.top1_agreement = float((predictions == golden.test_predictions).mean())
    row.accuracy_ci95 = list(wilson_interval(int(correct.sum()), len(correct)))
    row.mcnemar = mcnemar_exact(ref_correct, correct)
    classes = int(max(test.labels.max(), predictions.max())) + 1
    ours = per_class_accuracy(test.labels, predictions, classes)
    ref = per_class_accuracy(test.labels, golden.test_predictions, classes)
    row.per_class_delta = [None if a is None or r is None else a - r for a, r in zip(ours, ref, strict=True)]
    row.class_metrics = classification_summary(test.labels, predictions, classes)
    drop = 100.0 * (row.reference_accuracy - row.accuracy)
    row.observe("max_accuracy_drop", drop, max)
    row.observe("min_top1_agreement", row.top1_agreement, min)
    return drop


def _accuracy_check(runner: Runner, folder: ArtifactsFolder, golden: Golden, test: Split, tol: Tolerance,
                    row: VerifyResult) -> None:
    inputs = folder.manifest.preprocessing.apply(test.images)
    try:
        predictions = _run_batched(runner, inputs, 256).argmax(1)
    except Exception as exc:
        row.add(Check("accuracy", False, detail=f"runtime error: {first_line(exc)}"))
        return
    drop = _accuracy_stats(row, predictions, golden, test)
    problems = []
    if tol.max_accuracy_drop is not None and drop > tol.max_accuracy_drop:
        problems.append(f"accuracy {row.accuracy:.4f} is {drop:.2f} points below the reference "
                        f"{row.reference_accuracy:.4f} (budget {tol.max_accuracy_drop:g}, McNemar p="
                        f"{row.mcnemar['p_value']:.2g})")
    if agreement_below(row.top1_agreement, len(predictions), tol.min_top1_agreement):
        problems.append(f"test-set top-1 agreement {row.top1_agreement:.4f} is significantly below "
                        f"{tol.min_top1_agreement:g}")
    row.add(Check("accuracy", not problems, observed={"accuracy": row.accuracy, "drop_points": drop,
                                                        "top1_agreement": row.top1_agreement},
                  limit=tol.to_dict(), detail="; ".join(problems)))


def preprocessing_check(folder: ArtifactsFolder, golden: Golden) -> Check:
    """The manifest's preprocessing must turn the golden pixels into exactly the inputs the reference saw."""
    recomputed = folder.manifest.preprocessing.apply(golden.images)
    err = float(np.abs(recomputed - golden.inputs).max()) if recomputed.shape == golden.inputs.shape else np.inf
    ok = err <= 1e-5
    return Check("preprocessing", ok, observed=err, limit=1e-5,
                 detail="" if ok else f"manifest preprocessing no longer reproduces the golden inputs "
                                      f"(max diff {err:.3g}): mean/std/scale changed after the build")


def integrity_check(folder: ArtifactsFolder, artifact: Artifact) -> Check:
    problem = folder.integrity_problem(artifact)
    return Check("integrity", problem is None, observed=artifact.sha256[:12], detail=problem or "")


def precision_check(artifact: Artifact) -> Check:
    """The precision a format produces is the exporter's, not the manifest's to choose: a relabelled int8 file
    would otherwise be judged by int8's looser tolerance."""
    from export_kit.exporters import EXPORTERS

    exporter = EXPORTERS.get(artifact.format)
    expected = exporter.precision if exporter else artifact.precision
    ok = expected == artifact.precision
    return Check("precision", ok, observed=artifact.precision, limit=expected,
                 detail="" if ok else f"format {artifact.format} makes {expected} files; the manifest says "
                                      f"{artifact.precision}")


def artifact_checks(folder: ArtifactsFolder, artifact: Artifact) -> list[Check]:
    """Checks of the file itself, done once whatever the target count: its hash, and for ONNX its graph."""
    checks = [integrity_check(folder, artifact), precision_check(artifact)]
    if checks[0].passed and artifact.path.endswith(".onnx"):
        checks += onnx_graph_checks(folder.file(artifact), artifact, folder.manifest)
    return checks


def consistency_checks(folder: ArtifactsFolder) -> list[Check]:
    """The manifest against the reference checkpoint it pins (loaded up front: see ``reference_meta``)."""
    meta = folder.reference_meta()
    if meta is None:
        return []
    problems = folder.checkpoint_mismatches(meta)
    return [Check("consistency", not problems, detail="; ".join(problems) + (
        ": the folder was edited after the build" if problems else ""))]


def reference_predictions(folder: ArtifactsFolder, golden: Golden, test: Split) -> tuple[np.ndarray, Check | None]:
    """The reference's top-1 on ``test``, recomputed from the checkpoint when the folder has an intact one.

    The stored predictions are what accuracy is compared against, so a folder must not be able to choose them:
    recomputed ones are used, and a stored set that disagrees beyond near-ties fails every row.
    """
    ref = folder.reference_artifact()
    if ref is None or folder.integrity_problem(ref):
        return golden.test_predictions, None
    import torch

    try:
        model = folder.reference_module(ref)
    except UnavailableError:  # its factory is not installed here: the stored predictions are all there is
        return golden.test_predictions, None
    prep = folder.manifest.preprocessing
    with torch.inference_mode():
        preds = np.concatenate([model(torch.from_numpy(prep.apply(test.images[i:i + 500]))).argmax(1).numpy()
                                for i in range(0, len(test), 500)]).astype(np.int64)
    differ = int((preds != golden.test_predictions).sum()) if len(preds) == len(golden.test_predictions) else -1
    allowed = max(1, len(preds) // 1000)  # near-ties may flip between machines and thread layouts
    ok = 0 <= differ <= allowed
    return preds, Check("reference", ok, observed=differ, limit=allowed,
                        detail="" if ok else f"the folder's stored reference predictions differ from its checkpoint's "
                                             f"on {differ if differ >= 0 else 'all'} of {len(preds)} test images")


def verify_target(folder: ArtifactsFolder, artifact: Artifact, target: Target, golden: Golden,
                  test: Split | None, tol: Tolerance, checks: list[Check]) -> VerifyResult:
    """Run one artifact on one target; ``checks`` (done once per folder or artifact) head the row."""
    row = VerifyResult(artifact.name, artifact.format, target.runtime, target.device, artifact.precision,
                       tolerance=tol.to_dict())
    for check in checks:
        row.add(check)
    if any(c.name in ("integrity", "self_contained") and not c.passed for c in checks):
        return row
    try:
        runner = folder.runner(artifact, target, threads=None)
    except UnavailableError as exc:
        return VerifyResult(artifact.name, artifact.format, target.runtime, target.device, artifact.precision,
                            status="skipped", reason=str(exc), tolerance=tol.to_dict())
    except Exception as exc:
        row.add(Check("load", False, detail=first_line(exc)))
        return row
    with runner:
        row.add(Check("load", True))
        few = golden.inputs[:SINGLE_SAMPLES]
        _parity_check("parity_batch1", golden.logits[:len(few)], lambda: _run_batched(runner, few, 1), tol, row)
        _parity_check(f"parity_batch{BATCH}", golden.logits, lambda: _run_batched(runner, golden.inputs, BATCH),
                      tol, row)
        if test is not None:
            _accuracy_check(runner, folder, golden, test, tol, row)
    return row


def verify_folder(folder: ArtifactsFolder, test: Split | None = None, *,
                  tolerances: Overrides | None = None, devices: tuple[str, ...] | None = None,
                  on_row: Callable[[VerifyResult], None] | None = None) -> list[VerifyResult]:
    """Verify every artifact on every target of its runtime; unavailable targets become skipped rows."""
    golden_issue = folder.golden_problem()
    if golden_issue:
        raise DataError(f"cannot verify {folder.path}: golden vectors unusable ({golden_issue}); rebuild it")
    golden = folder.golden()
    if test is not None and not len(golden.test_labels):
        raise DataError(f"{folder.path} was built without a test set, so there is no reference accuracy to "
                        "compare with; rebuild it with --data-dir or --dataset")
    if test is not None and not np.array_equal(golden.test_labels, test.labels):
        raise DataError(f"the test split given ({len(test)} images) is not the one this folder was built with "
                        f"({len(golden.test_labels)} images); pass the same --data-dir/--dataset as the build")
    folder_checks = [preprocessing_check(folder, golden), *consistency_checks(folder)]
    if test is not None:
        predictions, check = reference_predictions(folder, golden, test)
        golden = replace(golden, test_predictions=predictions)
        folder_checks += [check] if check else []
    rows = []
    for artifact in folder.manifest.artifacts:
        tol = tolerance_for(artifact, tolerances)
        checks = [*folder_checks, *artifact_checks(folder, artifact)]
        for target in targets_for(artifact.runtime, devices):
            reason = unavailable_reason(target)
            if reason:
                row = VerifyResult(artifact.name, artifact.format, target.runtime, target.device,
                                   artifact.precision, status="skipped", reason=reason, tolerance=tol.to_dict())
            else:
                row = verify_target(folder, artifact, target, golden, test, tol, checks)
            rows.append(row)
            if on_row:
                on_row(row)
    return rows
