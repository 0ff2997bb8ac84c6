"""report.md: the report as tables a person reads, one row per artifact with a status per stage."""

from __future__ import annotations

import re
from typing import TYPE_CHECKING

from export_kit.benchmark.tuning import gain
from export_kit.explain.core import Explanation
from export_kit.folder.layout import CLASSES_PNG
from export_kit.folder.measured import carried_note
from export_kit.report.explanation import markdown as explain_section
from export_kit.report.verdict import absent_devices, glance, overall, speedup_text, verdict_lines
from export_kit.results import BenchResult, Status, VerifyResult
from export_kit.runners.base import threads_of
from export_kit.safeio.escape import markdown as md
from export_kit.verification.checks import STAGES, stage_of

if TYPE_CHECKING:
    from export_kit.report.record import Report


def _fmt(value, spec: str = ".3g") -> str:
    if value is None:
        return "-"
    if isinstance(value, float):
        return format(value, spec)
    return str(value)


def _table(header: list[str], rows: list[list[str]]) -> str:
    lines = ["| " + " | ".join(md(h) for h in header) + " |", "|" + "---|" * len(header)]  # class names too
    lines += ["| " + " | ".join(md(cell) for cell in row) + " |" for row in rows]  # every cell is data
    return "\n".join(lines)


def _stage(rows: list[VerifyResult], stage: str) -> str:
    """pass/FAIL of every check of ``stage`` (the check registry says which stage each check reports under)."""
    seen = [c for r in rows for c in r.checks if stage_of(c["name"]) == stage]
    if not seen:
        return "skipped" if rows and all(r.status == "skipped" for r in rows) else "-"
    return "pass" if all(c["passed"] for c in seen) else "FAIL"


def status_rows(report: Report) -> list[list[str]]:
    """One row per artifact; the skips of a device this machine lacks are left to the verdict's one line, so
    "why" holds only what is particular to the artifact."""
    verify, bench = report.verify_rows(), report.bench_rows()
    absent = absent_devices(report)
    out = []
    for art in report.artifacts:
        mine = [r for r in verify if r.artifact == art["name"]]
        timed = [b for b in bench if b.artifact == art["name"]]
        bench_state = ("FAIL" if any(not b.passed for b in timed) else "ok" if any(b.status == Status.PASSED
                                                                                   for b in timed)
                       else "skipped" if timed else "-")
        why = "; ".join(sorted({f"{r.runtime}/{r.device}: {r.reason}" for r in mine
                                if r.status != "passed" and r.device not in absent}))
        out.append([art["name"], "ok", *(_stage(mine, stage) for stage in STAGES), bench_state, why or "-"])
    for fail in report.export_failures:
        out.append([fail["format"], fail.get("status", "FAIL"), *("-" for _ in STAGES), "-", fail["reason"]])
    return out


def _accuracy_cell(r: VerifyResult) -> str:
    if r.accuracy is None:
        return "-"
    lo, hi = r.accuracy_ci95 or (None, None)
    kept = f" ({carried_note(r)})" if r.accuracy_measured else ""
    return f"{r.accuracy:.4f} [{_fmt(lo, '.4f')}, {_fmt(hi, '.4f')}]{kept}"


def _change_cell(r: VerifyResult) -> str:
    """Is the accuracy change vs the reference real? McNemar's exact test on paired per-image correctness."""
    if not r.mcnemar or r.reference_accuracy is None:
        return "-"
    p = r.mcnemar["p_value"]
    delta = 100 * (r.accuracy - r.reference_accuracy)
    return f"{delta:+.2f} pts, p={p:.2g} ({'significant' if p < 0.05 else 'noise'})"


def _verify_table(rows: list[VerifyResult]) -> str:
    keys = ("max_abs", "min_top1_agreement", "max_accuracy_drop", "min_cosine")
    return _table(
        ["artifact", "runtime", "device", "status", "max abs err", "p99 abs err", "cosine", "top-1 agree",
         "accuracy [95% CI]", "vs reference (McNemar)", "tolerance (max abs / top-1 / acc drop / cosine)",
         "would pass at"],
        [[r.artifact, r.runtime, r.device, r.status, _fmt(r.max_abs_err), _fmt(r.p99_abs_err), _fmt(r.cosine, ".6f"),
          _fmt(r.top1_agreement, ".4f"), _accuracy_cell(r), _change_cell(r),
          " / ".join(_fmt(r.tolerance.get(k)) for k in keys),
          " / ".join(_fmt(r.min_passing.get(k), ".3g") for k in keys)]
         for r in rows])


def _per_class_table(rows: list[VerifyResult], classes: list[str]) -> str:
    shown = [r for r in rows if r.per_class_delta]
    return _table(["artifact", "runtime", *classes],
                  [[r.artifact, r.runtime, *(_fmt(None if d is None else 100 * d, "+.1f") for d in r.per_class_delta)]
                   for r in shown])


def _p50(row: BenchResult) -> str:
    if row.p50_ms is None or not row.p50_ci95_ms:
        return _fmt(row.p50_ms, ".4f")
    low, high = row.p50_ci95_ms
    return f"{row.p50_ms:.4f} [{low:.4f}, {high:.4f}]"


def _bench_table(rows: list[BenchResult]) -> str:
    return _table(
        ["artifact", "runtime", "device", "batch", "p50 ms [95% CI]", "p90 ms", "p99 ms", "mean ms", "images/s",
         "vs eager", "spread between processes", "threads", "status"],
        [[r.artifact, r.runtime, r.device, str(r.batch), _p50(r), _fmt(r.p90_ms, ".4f"),
          _fmt(r.p99_ms, ".4f"), _fmt(r.mean_ms, ".4f"), _fmt(r.throughput_per_s, ",.0f"),
          f"{r.speedup_vs_eager:.2f}x" if r.speedup_vs_eager else "-",
          "-" if r.noise is None else f"{r.noise:.1%}{' NOISY' if r.noisy else ''}",
          str(threads_of(r.settings) or "-"),
          r.status if r.status == Status.PASSED else f"{r.status}: {r.reason}"] for r in rows])


def _f1_table(rows: list[VerifyResult], classes: list[str]) -> str:
    shown = [r for r in rows if r.class_metrics]
    return _table(["artifact", "runtime", "macro F1", *classes],
                  [[r.artifact, r.runtime, _fmt(r.class_metrics["macro_f1"], ".3f"),
                    *(_fmt(v, ".3f") for v in r.class_metrics["f1"])] for r in shown])


def _reference_accuracy(report: Report) -> float | None:
    """The checkpoint's own test accuracy, or, for a model that came without one (``--model``), the eager
    reference's accuracy as verify measured it."""
    recorded = report.model.get("test_accuracy")
    if recorded is not None:
        return recorded
    return next((r.accuracy for r in report.verify_rows() if r.artifact == "pytorch" and r.device == "cpu"), None)


def _failure_details(report: Report) -> list[str]:
    """Each export failure's whole text (its cause and traceback), in a fence nothing inside can close."""
    parts = []
    for fail in report.export_failures:
        if fail.get("details"):
            text = re.sub(r"~{4,}", "~~~", str(fail["details"]))
            parts += [f"### Export of {md(fail['format'])}, in full", "", "~~~~text", text, "~~~~", ""]
    return parts


def render(report: Report) -> str:
    parts = [f"# exportkit report: {md(report.folder)}", "", "## Verdict", "",
             f"Overall: **{overall(report)}** ({md(report.created)})", "",
             *[f"- {md(line)}" for line in verdict_lines(report)],
             ""]
    if report.artifacts:
        parts += ["### At a glance (CPU)", "", _table(*glance(report)), ""]
    if report.model:
        parts += [f"Model: {md(report.model.get('factory', '?'))}, reference test accuracy "
                  f"{_fmt(_reference_accuracy(report), '.4f')}", ""]
    parts += ["## Status per artifact", "",
              _table(["artifact", "export", *STAGES, "bench", "why"], status_rows(report)), ""]
    if report.verify:
        rows = report.verify_rows()
        parts += ["## Verification", "", _verify_table(rows), ""]
        if any(r.per_class_delta for r in rows):
            parts += ["### Per-class accuracy change vs the reference (points)", "",
                      _per_class_table(rows, report.classes), ""]
        if any(r.class_metrics for r in rows):
            parts += ["### Per-class F1 (confusion matrices in report.json)", "", _f1_table(rows, report.classes), "",
                      *[f"![{name.removesuffix('.png')}]({name})" for name in report.plots if name == CLASSES_PNG], ""]
    if report.explanations:
        parts += explain_section([Explanation.from_dict(e) for e in report.explanations])
    if report.bench:
        parts += ["## Latency", "", _bench_table(report.bench_rows()), ""]
        tuned = [r for r in report.bench_rows() if r.tuning]
        if tuned:
            parts += ["### Runtime settings chosen by measurement (bench --tune)", "",
                      "Every candidate ran in the same worker processes as the runtime's defaults; a candidate "
                      "replaces the defaults only when the interval of its latency over theirs lies below 1.", "",
                      _table(["artifact", "runtime", "device", "batch", "candidates", "chosen, vs the defaults"],
                             [[r.artifact, r.runtime, r.device, str(r.batch), str(len(r.tuning)), gain(r)]
                              for r in tuned]), ""]
        latency = [name for name in report.plots if name != CLASSES_PNG]
        parts += [f"![{name.removesuffix('.png')}]({name})" for name in latency]
        parts += [""] if latency else []
    if report.notes:
        parts += ["## int8 slower than fp32 here", "", *[f"- {md(line)}" for line in report.notes], ""]
    if report.gate:
        parts += ["## Latency gate against the baseline", "",
                  "Each sample is one worker process; the interval is a bootstrap 95% interval of new/baseline. "
                  "Only `slower` rows whose whole interval lies above the allowed regression fail.", "",
                  _table(["row", "verdict", "gate", "baseline p50 ms", "p50 ms", "change", "detail"],
                         [[g.key, g.verdict, g.status, _fmt(g.baseline_p50_ms, ".4f"), _fmt(g.p50_ms, ".4f"),
                           _fmt(g.change, "+.1%"), g.detail] for g in report.gate_rows()]), ""]
    if report.recommendation:
        parts += ["## Recommendation", "", "Fastest artifact per target among those that passed verification, and "
                  "the rows whose paired interval does not separate them from it:", "",
                  _table(["target", "artifact", "runtime", "batch", "p50 ms", "images/s", "vs eager",
                          "cannot be told apart from"],
                         [[r["target"], r["artifact"], r["runtime"], str(r["batch"]), _fmt(r["p50_ms"], ".4f"),
                           _fmt(r["throughput_per_s"], ",.0f"), speedup_text(r),
                           ", ".join(t["artifact"] for t in r.get("tied_with") or []) or "-"]
                          for r in report.recommendation]), ""]
    failures = report.failures()
    if failures:
        parts += ["## Failures", "", *[f"- {md(line)}" for line in failures], "", *_failure_details(report)]
    if report.timings:
        parts += ["## Stage timings (s)", "", _table(list(report.timings), [[f"{v:.1f}" for v in
                                                                              report.timings.values()]]), ""]
    if report.environment:
        parts += ["## Environment", "", *[f"- {md(k)}: {md(v)}" for k, v in report.environment.items()], ""]
    return "\n".join(parts)
