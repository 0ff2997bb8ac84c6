"""verify: every registered check (:mod:`export_kit.verification.checks`) for every artifact x target, each held to its
precision's tolerance.

Every failure is collected with its numbers; nothing is downgraded to a warning. Folder checks run once and head
every row; artifact checks run once per file, whatever the target count; target checks run on an open runner.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from functools import partial

import numpy as np

from export_kit.errors import DataError, DataMismatchError, UnavailableError, first_line
from export_kit.folder.golden import Golden
from export_kit.folder.load import ArtifactsFolder
from export_kit.folder.manifest import Artifact
from export_kit.model.datasets import Split
from export_kit.model.sources import image_misfit
from export_kit.results import Check, VerifyResult
from export_kit.runners import Runner, Target, targets_for, unavailable_reason
from export_kit.targets.spec import TargetSpec
from export_kit.verification.checks import CHECKS, VerifyContext, checks_in
from export_kit.verification.tolerances import Overrides, classifier_tolerance


def folder_checks(ctx: VerifyContext) -> list[Check]:
    return [check for spec in checks_in("folder") for check in spec.run(ctx)]


def artifact_checks(ctx: VerifyContext, artifact: Artifact) -> list[Check]:
    """The file's own checks, in registry order; a failed blocking check (missing bytes, unpinned weights)
    ends them, since nothing may read such a file."""
    done: list[Check] = []
    for spec in checks_in("artifact"):
        done += spec.run(ctx, artifact)
        if any(not c.passed and CHECKS[c.name].blocking for c in done):
            break
    return done


def _skipped(artifact: Artifact, target: Target, reason: str, tolerance: dict, where: str = "local") -> VerifyResult:
    return VerifyResult(artifact.name, artifact.format, target.runtime, target.device, artifact.precision,
                        status="skipped", reason=reason, tolerance=tolerance, target=where)


def _row_tolerance(ctx: VerifyContext, artifact: Artifact) -> dict:
    return classifier_tolerance(artifact, ctx.tolerances, ctx.folder.manifest.model_io).to_dict()


def verify_target(ctx: VerifyContext, artifact: Artifact, target: Target, checks: list[Check],
                  opener: Callable[[], Runner] | None = None, where: str = "local") -> VerifyResult:
    """Run one artifact on one target; ``checks`` (done once per folder or artifact) head the row, whose
    tolerance is the classifier output's (each check records the tolerance of every output it judged).
    ``opener`` makes the runner elsewhere (on the target ``where`` names); by default it runs here."""
    tol = _row_tolerance(ctx, artifact)
    row = VerifyResult(artifact.name, artifact.format, target.runtime, target.device, artifact.precision,
                       tolerance=tol, target=where)
    for check in checks:
        row.add(check)
    if any(not c.passed and CHECKS[c.name].blocking for c in checks):
        return row
    try:
        runner = opener() if opener else ctx.folder.runner(artifact, target, threads=None)
    except UnavailableError as exc:
        return _skipped(artifact, target, str(exc), tol)
    except Exception as exc:
        row.add(Check("load", False, detail=first_line(exc)))
        return row
    with runner:
        row.add(Check("load", True))
        for spec in checks_in("target"):
            spec.run(ctx, artifact, runner, row)
    return row


def data_misfit(folder: ArtifactsFolder, golden: Golden, test: Split) -> str | None:
    """Why ``test`` cannot measure this folder's accuracy (no reference accuracy was recorded in ``golden``, other
    image shapes, another split), or None when it is the split the folder was built with."""
    if folder.manifest.preprocessing is None:
        return (f"the model takes {', '.join(i.name for i in folder.manifest.model_io.inputs)}, not images, so "
                "labelled images cannot measure its accuracy")
    recorded = golden.test_labels
    if not len(recorded):
        return (f"{folder.path} was built without a test set, so there is no reference accuracy to compare with "
                "(rebuild it with --data-dir or --dataset)")
    misfit = image_misfit(folder.image_chw, test.images.shape[1:])
    if misfit:
        return misfit
    if not np.array_equal(recorded, test.labels):
        return (f"the test split given ({len(test)} images) is not the one this folder was built with "
                f"({len(recorded)} images); pass the same --data-dir/--dataset as the build")
    return None


def usable_test(folder: ArtifactsFolder, test: Split | None, optional: bool) -> tuple[Split | None, str | None]:
    """``test`` when it fits the folder. Data that came from the environment (``optional``) and does not fit
    is dropped with the reason, so the checks that need no data still run; data named on the command line that
    does not fit is the user's error (exit 2)."""
    if test is None or folder.golden_problem():
        return test, None  # a broken golden file is verify's own error, reported with its cause
    if folder.classifier is None:
        return None, "the model has no classifier output (--classifier none): it is verified by parity alone"
    misfit = data_misfit(folder, folder.golden(), test)
    if misfit and not optional:
        raise DataMismatchError(misfit)
    return (None, misfit) if misfit else (test, None)


def _context(folder: ArtifactsFolder, test: Split | None, tolerances: Overrides | None) -> VerifyContext:
    golden_issue = folder.golden_problem()
    if golden_issue:
        raise DataError(f"cannot verify {folder.path}: golden vectors unusable ({golden_issue}); rebuild it")
    golden = folder.golden()
    misfit = data_misfit(folder, golden, test) if test is not None else None
    if misfit:
        raise DataMismatchError(misfit)
    return VerifyContext(folder, golden, test, tolerances)


def verify_folder(folder: ArtifactsFolder, test: Split | None = None, *,
                  tolerances: Overrides | None = None, devices: tuple[str, ...] | None = None,
                  on_row: Callable[[VerifyResult], None] | None = None,
                  targets: Sequence[TargetSpec] = (), timeout: float = 120.0,
                  fingerprints: dict | None = None) -> list[VerifyResult]:
    """Verify every artifact on every target of its runtime here (unavailable ones become skipped rows), then on
    each remote target in ``targets`` (:func:`remote_rows`), whose fingerprints land in ``fingerprints``."""
    ctx = _context(folder, test, tolerances)
    if fingerprints is not None:
        ctx.fingerprints = fingerprints
    shared = folder_checks(ctx)
    checks = {a.name: [*shared, *artifact_checks(ctx, a)] for a in folder.manifest.artifacts}
    rows = []
    if not targets or any(not t.remote for t in targets):
        rows += _local_rows(ctx, checks, devices, on_row)
    remote = [t for t in targets if t.remote]
    if remote:  # a fleet runs in parallel: each target waits on its own device, not on the others
        with ThreadPoolExecutor(max_workers=len(remote), thread_name_prefix="exportkit-target") as pool:
            for found in pool.map(lambda spec: remote_rows(ctx, spec, checks, timeout, on_row), remote):
                rows += found
    return rows


def _local_rows(ctx: VerifyContext, checks: dict[str, list[Check]], devices: tuple[str, ...] | None,
                on_row: Callable[[VerifyResult], None] | None) -> list[VerifyResult]:
    rows = []
    for artifact in ctx.folder.manifest.artifacts:
        for target in targets_for(artifact.runtime, devices):
            reason = unavailable_reason(target)
            if reason:
                row = _skipped(artifact, target, reason, _row_tolerance(ctx, artifact))
            else:
                row = verify_target(ctx, artifact, target, checks[artifact.name])
            rows.append(row)
            if on_row:
                on_row(row)
    return rows


def remote_rows(ctx: VerifyContext, spec: TargetSpec, checks: dict[str, list[Check]], timeout: float,
                on_row: Callable[[VerifyResult], None] | None = None) -> list[VerifyResult]:
    """Every artifact on one remote target, through its agent: the same checks as here, on the target's runtime.
    A target that cannot be reached skips its rows with the reason; one that fails mid-run fails the row it was
    on, with the transport's reason."""
    from export_kit.targets.channel import Channel, TargetError
    from export_kit.targets.remote import AGENT_RUNTIMES, device_label, open_remote

    artifacts = ctx.folder.manifest.artifacts
    try:
        channel = Channel(spec, timeout)
    except TargetError as exc:
        rows = [_skipped(a, Target(a.runtime, spec.name), str(exc), _row_tolerance(ctx, a), spec.name)
                for a in artifacts]
    else:
        with channel:
            label, found = device_label(spec.name, channel.fingerprint), channel.fingerprint.get("runtimes", {})
            ctx.fingerprints[spec.name] = channel.fingerprint
            rows = []
            for a in artifacts:
                target, tol = Target(a.runtime, label), _row_tolerance(ctx, a)
                if a.runtime not in AGENT_RUNTIMES or a.files:
                    why = f"the agent on {spec.name} runs single-file onnxruntime artifacts only"
                    rows.append(_skipped(a, target, why, tol, spec.name))
                elif not found.get(a.runtime):
                    why = f"skipped on {spec.name}: {found.get(a.runtime + ':why') or 'onnxruntime is not installed'}"
                    rows.append(_skipped(a, target, why, tol, spec.name))
                else:
                    rows.append(verify_target(ctx, a, target, checks[a.name], partial(
                        open_remote, channel, a.runtime, ctx.folder.file(a), ctx.folder.io, target.device), spec.name))
                if on_row:
                    on_row(rows[-1])
        return rows
    if on_row:
        for row in rows:
            on_row(row)
    return rows
