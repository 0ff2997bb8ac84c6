"""Library entry points: :func:`build`, :func:`verify`, :func:`bench`. The CLI is a thin layer over these.

Commands talk through the artifacts folder: ``build`` writes it (``manifest.json`` last), ``verify`` and
``bench`` read only it (plus the dataset when accuracy is asked for) and each rewrite their section of the report.
"""

from __future__ import annotations

import json
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from export_kit.benchmark.baseline import compare, compare_rows, save_baseline
from export_kit.benchmark.sampling import FolderSpec, SamplingConfig
from export_kit.builder import GOLDEN_COUNT, export_folder, prepare_out_dir, resolve_formats
from export_kit.errors import UnavailableError, UsageError
from export_kit.exporters import ExportRequest
from export_kit.exporters.base import check_format_options
from export_kit.folder.access import Access, check_report_dir, open_folder
from export_kit.folder.load import ArtifactsFolder
from export_kit.model.datasets import Split
from export_kit.model.io import InputSpec, describe, first_sample
from export_kit.model.outputs import classifier_choice
from export_kit.model.preprocessing import Preprocessing
from export_kit.progress import Log
from export_kit.report.record import Report, load_report
from export_kit.report.write import write_report
from export_kit.results import BenchResult, GateResult, VerifyResult
from export_kit.runners import check_devices
from export_kit.safeio.atomic import stopwatch
from export_kit.safeio.limits import check_batch
from export_kit.verification.tolerances import Overrides, check_tolerance_names

if TYPE_CHECKING:
    from export_kit.explain.core import Explanation
    from export_kit.faults.plant import FaultResult


def build(model, example_input, *, formats: Sequence[str] | str | None = None, out: Path = Path("artifacts"),
          preprocessing: Preprocessing | None = None, classes: Sequence[str] | None = None,
          inputs: Sequence[InputSpec] | None = None, classifier: str | None = None,
          test: Split | None = None, calibration: Split | None = None, checkpoint: Path | None = None,
          model_info: dict | None = None, golden_count: int = GOLDEN_COUNT, verify_after: bool = True,
          bench_batches: Sequence[int] = (1, 32),
          bench_config: SamplingConfig | None = None, timings: dict[str, float] | None = None,
          format_options: Mapping[str, Mapping[str, Any]] | None = None, log: Log = print) -> Report:
    """Export ``model`` to each format in ``out``, then verify and benchmark the folder. Returns the report.

    ``example_input`` is an image batch, a float tensor ``(N, C, H, W)`` with C 3 (RGB) or 1 (grayscale), fed
    through ``preprocessing`` (default: pixels scaled to [0, 1]); or, for any other model, a tensor, a tuple
    or a dict of tensors in ``forward``'s argument order (audio, token ids, several inputs), whose specs and value
    domains are inferred from it unless ``inputs`` gives them (:mod:`export_kit.model.io`). The batch axis of every
    input stays dynamic, and so does every axis an ``InputSpec`` names in ``dims`` (:mod:`export_kit.model.axes`). The
    model may return a tensor, a tuple or a dict; ``classifier`` names the output whose
    logits accuracy is judged on (default: the first). Without ``classes`` outputs are named ``class0``...;
    without ``test`` (a labelled uint8 split, image models only) the golden vectors use seeded random pixels or
    values and no accuracy is measured. ``calibration`` (training images, never test images) feeds formats
    that calibrate, such as ``int8-static``. ``checkpoint`` (an exportkit checkpoint) adds the eager reference
    to the folder, which gives verify and bench their ``pytorch`` rows. ``timings`` (seconds per stage already
    done, e.g. training) is extended with the stages run here and stored in the report. ``format_options`` maps a
    format's name to its options, which its exporter validates (``{"int8-static": {"keep_float": [1, 2]}}`` adds
    ``int8-static-keepN`` per N: static int8 with its N costliest layers left in float).
    """
    model.eval()
    io, preprocessing = describe(model, example_input, preprocessing, inputs, classifier)
    choice = classifier_choice(io, classifier)
    if choice:
        log(choice)
    classes = list(classes) if classes is not None else [f"class{i}" for i in range(io.classes)]
    if len(classes) != io.classes:
        raise UsageError(f"{len(classes)} class names for a classifier output of width {io.classes}")
    if preprocessing is None and (calibration is not None or test is not None):
        raise UsageError("test and calibration images feed image models; this model takes "
                         f"{', '.join(i.name for i in io.inputs)}")
    formats = resolve_formats(formats, calibration)
    options = check_format_options(formats, format_options)
    out = prepare_out_dir(out)
    metadata = {"exportkit.preprocessing": json.dumps(preprocessing.to_dict() if preprocessing else None),
                "exportkit.classes": json.dumps(list(classes))}
    request = ExportRequest(model=model, example=first_sample(example_input), out_dir=out, io=io,
                            metadata=metadata, options=options,
                            calibration=None if calibration is None else preprocessing.apply(calibration.images))
    timings = dict(timings or {})
    with stopwatch(timings, "export"):
        manifest = export_folder(request, formats, preprocessing=preprocessing, classes=classes, test=test,
                                 checkpoint=checkpoint, model_info=model_info or {}, golden_count=golden_count,
                                 log=log)
    report = Report(folder=str(out), model=manifest.model, artifacts=[a.__dict__ for a in manifest.artifacts],
                    export_failures=manifest.failures)
    write_report(report, out, plots=False)
    if verify_after:
        with stopwatch(timings, "verify"):
            report = verify(out, test, log=log)
    if bench_batches:
        with stopwatch(timings, "bench"):
            report = bench(out, bench_batches, config=bench_config, log=log)
    report.timings = {k: round(v, 2) for k, v in timings.items()}
    write_report(report, out, plots=False)  # the timings change no picture
    return report


@dataclass
class Gate:
    """What ``bench`` does with a baseline: compare against ``baseline``, or against the folder ``against`` timed
    in the same workers, and/or write ``save_to``."""

    baseline: Path | None = None
    max_regression: float = 0.10
    allow_env_mismatch: bool = False
    save_to: Path | None = None
    against: Path | None = None

    def apply(self, rows: list[BenchResult], environment: dict,
              against_rows: list[BenchResult] | None = None) -> list[GateResult]:
        results = []
        if against_rows is not None:
            results = compare_rows(rows, against_rows, self.max_regression, paired=True)
        elif self.baseline is not None:
            results = compare(rows, environment, self.baseline, self.max_regression, self.allow_env_mismatch)
        if self.save_to is not None:
            save_baseline(self.save_to, rows, environment)
        return results


def _require_requested_devices(rows, devices: tuple[str, ...] | None) -> None:
    """When the user named devices, at least one row must have run on them; else say why none could."""
    if devices and rows and all(r.status == "skipped" for r in rows):
        reasons = sorted({r.reason for r in rows})
        raise UnavailableError(f"nothing could run on {', '.join(devices)}: {'; '.join(reasons)}")


def report_for(folder: ArtifactsFolder, report_dir: Path) -> Report:
    from export_kit.benchmark.environment import fingerprint

    report = load_report(report_dir)
    if report is None:
        report = Report(folder=str(folder.path))
    report.folder, report.model, report.classes = str(folder.path), folder.manifest.model, folder.manifest.classes
    report.artifacts = [a.__dict__ for a in folder.manifest.artifacts]
    report.export_failures = folder.manifest.failures
    report.environment = fingerprint()
    return report


def row_figures(row: VerifyResult) -> str:
    """The numbers behind a verify row's pass or FAIL, in the order a reader weighs them."""
    figures = [f"max abs err {row.max_abs_err:.3g}" if row.max_abs_err is not None else "",
               f"top-1 agreement {row.top1_agreement:.4f}" if row.top1_agreement is not None else "",
               f"accuracy {row.accuracy:.4f}" if row.accuracy is not None else ""]
    return "(" + ", ".join(filter(None, figures)) + ")" if any(figures) else ""


def verify(out: Path, test: Split | None = None, *, tolerances: Overrides | None = None,
           devices: tuple[str, ...] | None = None, access: Access | None = None, data_optional: bool = False,
           explain: bool = True, targets: Sequence[str] | None = None,
           target_timeout: float = 120.0, log: Log = print) -> Report:
    """Check every artifact in the folder; with ``test``, also full test-set accuracy. Rewrites the report's
    verify section (in ``access.report_dir`` when given); ``access`` says what the folder is trusted with.
    ``data_optional`` (data found in the environment, not asked for) skips accuracy when ``test`` does not fit
    the folder's model instead of refusing. ``explain`` localizes each failed parity or accuracy row
    (:func:`export_kit.explain.run.explain_failures`). ``targets`` (``NAME=URL``, see
    :mod:`export_kit.targets.spec`) adds each remote target's rows; ``local`` keeps this machine's;
    ``target_timeout`` bounds every step on a target (seconds)."""
    from export_kit.explain.run import explain_failures
    from export_kit.folder.measured import carry_over, write_record
    from export_kit.report.explanation import headline
    from export_kit.targets.spec import parse_targets
    from export_kit.verification.run import usable_test, verify_folder

    check_devices(devices)
    specs = parse_targets(targets) if targets else []
    folder, report_dir = open_folder(Path(out), access)
    check_tolerance_names(tolerances, folder.manifest)
    test, misfit = usable_test(folder, test, data_optional)
    if misfit:
        log(f"accuracy skipped: {misfit}")

    def show(row: VerifyResult) -> None:
        mark = {"passed": "pass", "failed": "FAIL", "skipped": "skip"}[row.status]
        log(f"verify {row.artifact} on {row.runtime}/{row.device}: {mark} {row_figures(row)} {row.reason}".rstrip())

    fingerprints: dict = {}
    rows = verify_folder(folder, test, tolerances=tolerances, devices=devices, on_row=show, targets=specs,
                         timeout=target_timeout, fingerprints=fingerprints)
    _require_requested_devices(rows, devices)
    explained = explain_failures(folder, rows, on_done=lambda e: log(f"explain {headline(e)}")) if explain else []
    report = report_for(folder, report_dir)
    if test is not None:
        write_record(report_dir, rows, report.artifacts, test)
    else:
        why = carry_over(report_dir, rows, report.artifacts, access.trust_keys if access else ())
        if why:
            log(f"accuracy of the last run with data not shown: {why}")
    report.created = time.strftime("%Y-%m-%dT%H:%M:%S%z")
    report.verify = [r.to_dict() for r in rows]
    report.targets = fingerprints
    report.explanations = [e.to_dict() for e in explained]
    write_report(report, report_dir)
    return report


def bench(out: Path, batches: Sequence[int] = (1, 32), *, devices: tuple[str, ...] | None = None,
          config: SamplingConfig | None = None, gate: Gate | None = None, access: Access | None = None,
          tune: bool = False, log: Log = print) -> Report:
    """Time every artifact on every available target at each batch size. Rewrites the report's bench section,
    and with ``gate`` compares against a baseline or another folder (timed in the same workers), or saves one.
    ``tune`` times every candidate setting per row and records the winners in the manifest
    (``export_kit.benchmark.tuning``)."""
    from export_kit.benchmark.run import Bench, bench_folders
    from export_kit.benchmark.tuning import record
    from export_kit.folder.signing import require_trusted_signature

    if not batches:
        raise UsageError("give at least one batch size")
    for b in batches:
        check_batch(b)
    check_devices(devices)
    config = config or SamplingConfig()
    folder, report_dir = open_folder(Path(out), access)
    folder.reference_meta()
    benches = [Bench(folder, folder_spec(folder, access))]
    if gate and gate.against is not None:
        benches.append(_against(folder, gate.against, access))
    if tune:
        if len(benches) > 1:
            raise UsageError("--tune chooses settings for one folder; run it without --against")
        check_report_dir(folder.path, "--tune (it records the settings in the manifest)")
        require_trusted_signature(folder.path, access.trust_keys if access else (), "bench --tune")
    workers = max(config.processes, 1)
    log(f"bench: {len(benches)} folder(s) in {workers} worker process(es), rows interleaved")
    measured = bench_folders(benches, list(batches), config, devices=devices, tune=tune,
                             on_process=lambda i: log(f"bench: worker {i + 1}/{workers} done"))
    rows = measured[0]
    if tune:
        folder.manifest = record(folder.path, rows, access.trust_keys if access else ())
    for row in rows:
        log(f"bench {row.artifact} on {row.runtime}/{row.device} batch {row.batch}: " + (
            f"p50 {row.p50_ms:.4f} ms" if row.p50_ms is not None else f"{row.status}: {row.reason}"))
    _require_requested_devices(rows, devices)
    report = report_for(folder, report_dir)
    report.bench = [r.to_dict() for r in rows]
    report.gate = ([g.to_dict() for g in gate.apply(rows, report.environment, measured[1] if len(measured) > 1
                                                     else None)] if gate else [])
    write_report(report, report_dir)
    return report


def folder_spec(folder: ArtifactsFolder, access: Access | None) -> FolderSpec:
    """What a bench worker needs to reopen ``folder`` with the same trust."""
    access = access or Access()
    return FolderSpec(str(folder.path), [str(k) for k in access.trust_keys], access.trust_code,
                      list(access.factories))


def _against(folder: ArtifactsFolder, other: Path, access: Access | None):
    """The folder to compare with, refused when it holds another model (its latency says nothing about this one)."""
    from export_kit.benchmark.run import Bench

    old, _ = open_folder(Path(other), access, writes=False)
    mine, theirs = folder.manifest, old.manifest
    mine_io, their_io = mine.model_io.to_dict(), theirs.model_io.to_dict()
    for what, a, b in (("inputs", mine_io["inputs"], their_io["inputs"]),
                       ("outputs", mine_io["outputs"], their_io["outputs"]),
                       ("classes", len(mine.classes), len(theirs.classes))):
        if a != b:
            raise UsageError(f"--against {other} holds another model ({what} {b!r}, here {a!r}); compare "
                             "builds of the same model")
    return Bench(old, folder_spec(old, access))


def explain(out: Path, artifact: str, *, samples: int | None = None, extract: Path | None = None,
            access: Access | None = None, log: Log = print) -> Explanation:
    """Explain one artifact, add it to the folder's report (replacing an earlier one of the same artifact) and,
    with ``extract``, write the subgraph up to its first diverging layer there."""
    from export_kit.explain.core import DEFAULT_SAMPLES, explain_artifact
    from export_kit.explain.extract import check_destination, extract_subgraph

    if extract is not None:
        extract = check_destination(extract)
    folder, report_dir = open_folder(Path(out), access)
    found = explain_artifact(folder, artifact, DEFAULT_SAMPLES if samples is None else samples)
    if extract is not None:
        if found.first is None:
            log(f"nothing diverges, so no subgraph was written to {extract}")
        else:
            nodes = extract_subgraph(folder.file(folder.manifest.artifact(artifact)), found.first["tensor"], extract)
            log(f"wrote {extract}: {nodes} nodes, from the inputs to {found.first['tensor']}")
    report = report_for(folder, report_dir)
    report.explanations = [e for e in report.explanations if e.get("artifact") != artifact] + [found.to_dict()]
    write_report(report, report_dir)
    return found


def selftest(out: Path, test: Split | None = None, *, access: Access | None = None, data_optional: bool = False,
             log: Log = print) -> list[FaultResult]:
    """Plant every known fault in copies of the folder (:mod:`export_kit.faults.plant`) and verify each: the
    results, the control first. ``test`` and ``data_optional`` as for :func:`verify`."""
    from export_kit.faults.plant import selftest as run_selftest
    from export_kit.verification.run import usable_test

    source, _ = open_folder(Path(out), access, writes=False)
    test, misfit = usable_test(source, test, data_optional)
    if misfit:
        log(f"accuracy skipped: {misfit}")
    return run_selftest(source, test)
