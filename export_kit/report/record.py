"""The report as a record: verify, bench and gate rows plus the environment, with a JSON round trip. Writing it
(report.json, report.md, report.html, plots) is :func:`export_kit.report.write.write_report`.

``verify`` and ``bench`` each rewrite only their own section, so either command can be rerun alone.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from pathlib import Path

from export_kit.errors import ExportKitError
from export_kit.folder.layout import REPORT_JSON
from export_kit.results import BenchResult, GateResult, Record, Status, VerifyResult
from export_kit.runners.base import accelerator_of
from export_kit.safeio.limits import read_json
from export_kit.safeio.trust import UNTRUSTED

#: What each command writes; ``bench`` includes the latency gate.
SECTIONS = ("export", "verify", "bench")


@dataclass
class Report(Record):
    folder: str = ""
    created: str = field(default_factory=lambda: time.strftime("%Y-%m-%dT%H:%M:%S%z"))
    environment: dict = field(default_factory=dict)
    model: dict = field(default_factory=dict)
    artifacts: list[dict] = field(default_factory=list)
    classes: list[str] = field(default_factory=list)
    export_failures: list[dict] = field(default_factory=list)
    verify: list[dict] = field(default_factory=list)
    bench: list[dict] = field(default_factory=list)
    timings: dict = field(default_factory=dict)
    gate: list[dict] = field(default_factory=list)
    recommendation: list[dict] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    plots: list[str] = field(default_factory=list)
    explanations: list[dict] = field(default_factory=list)  # exportkit explain, by verify or by hand
    targets: dict = field(default_factory=dict)  # each remote target's fingerprint, by name (verify --target)

    def gate_rows(self) -> list[GateResult]:
        return [GateResult.from_dict(g) for g in self.gate]

    def verify_rows(self) -> list[VerifyResult]:
        return [VerifyResult.from_dict(r) for r in self.verify]

    def bench_rows(self) -> list[BenchResult]:
        return [BenchResult.from_dict(r) for r in self.bench]

    def failures(self, sections: tuple[str, ...] = SECTIONS) -> list[str]:
        """One line per failure in ``sections``: a command's exit code counts only its own, never stale ones an
        earlier command left in report.json."""
        lines = []
        if "export" in sections:
            lines += [f"{f['format']}: export failed: {f['reason']}" for f in self.export_failures
                      if f.get("status") != "unavailable"]
        if "verify" in sections:
            lines += [f"{r.artifact} on {r.runtime}/{r.device}: {', '.join(r.failed_checks()) or 'failed'}: "
                      f"{r.reason}" for r in self.verify_rows() if not r.passed]
        if "bench" in sections:
            lines += [f"{r.artifact} on {r.runtime}/{r.device} batch {r.batch}: bench failed: {r.reason}"
                      for r in self.bench_rows() if not r.passed]
            lines += [f"{g.key}: latency regressed: {g.detail}" for g in self.gate_rows() if not g.passed]
        return lines

    def untrusted(self, sections: tuple[str, ...] = SECTIONS) -> list[str]:
        """Rows not run because their file's loader runs code the user has not trusted."""
        rows = [*(self.verify_rows() if "verify" in sections else []),
                *(self.bench_rows() if "bench" in sections else [])]
        return sorted({f"{r.artifact} on {r.runtime}/{r.device}" for r in rows
                       if r.status == Status.SKIPPED and r.reason.startswith(UNTRUSTED)})

    def unreached(self) -> list[str]:
        """Remote targets (verify --target) none of whose rows ran: each with the reason its first row gives."""
        by_target: dict[str, list[VerifyResult]] = {}
        for row in self.verify_rows():
            if row.target != "local":
                by_target.setdefault(row.target, []).append(row)
        return [f"{name}: {rows[0].reason}" for name, rows in sorted(by_target.items())
                if all(r.status == Status.SKIPPED for r in rows)]

    def int8_slowdowns(self) -> list[str]:
        """Say plainly where an int8 artifact runs slower than the fp32 artifact of the same runtime."""
        precision = {a["name"]: a["precision"] for a in self.artifacts}
        int8_ops = {a["name"]: sorted({op.split(":")[0] for op in a.get("details", {}).get("int8_layers", [])})
                    for a in self.artifacts}
        timed = {(b.artifact, b.runtime, b.device, b.batch): b for b in self.bench_rows()
                 if b.status == Status.PASSED and not b.noisy}
        lines = []
        for (name, runtime, device, batch), row in timed.items():
            if precision.get(name) != "int8":
                continue
            for fp32 in (n for n, p in precision.items() if p == "fp32" and n != "pytorch"):
                base = timed.get((fp32, runtime, device, batch))
                if base and clearly_slower(row, base):
                    lines.append(f"{name} is {row.p50_ms / base.p50_ms:.2f}x slower than {fp32} on {runtime}/{device}"
                                 f" at batch {batch} ({row.p50_ms:.4f} vs {base.p50_ms:.4f} ms p50; int8 ops: "
                                 f"{', '.join(int8_ops.get(name, [])) or 'none'})")
        return lines

    def recommend(self) -> list[dict]:
        """Best verified artifact per target, with its speed-up over eager PyTorch measured in the same run, and
        the rows that cannot be told apart from it (:mod:`export_kit.benchmark.ranking`)."""
        from export_kit.benchmark.ranking import recommend

        verified = {(r.artifact, r.device) for r in self.verify_rows() if r.status == Status.PASSED}
        timed = [b for b in self.bench_rows() if b.status == Status.PASSED and (b.artifact, b.device) in verified]
        return recommend(timed, [
            ("CPU, batch 1 (latency)", lambda b: b.device == "cpu" and b.batch == 1, "p50_ms"),
            ("CPU, largest batch (throughput)", lambda b: b.device == "cpu", "throughput_per_s"),
            ("CUDA, batch 1 (latency)", lambda b: accelerator_of(b.device) == "cuda" and b.batch == 1, "p50_ms")])

    @property
    def passed(self) -> bool:
        """No failure in any section (a command's own exit code reads only its sections: :meth:`failures`)."""
        return not self.failures()

    def derive(self) -> None:
        """Fill the sections computed from the rows: the recommendation and the int8 notes."""
        self.recommendation = self.recommend()
        self.notes = self.int8_slowdowns()


def clearly_slower(row: BenchResult, base: BenchResult) -> bool:
    """``row`` is slower than ``base`` beyond doubt: their 95% intervals do not overlap, or without intervals
    (single-process rows) the p50s differ by more than 5%, the spread such rows show between runs."""
    if row.p50_ci95_ms and base.p50_ci95_ms:
        return row.p50_ci95_ms[0] > base.p50_ci95_ms[1]
    return row.p50_ms > 1.05 * base.p50_ms


def load_report(folder: Path) -> Report | None:
    """The folder's existing report, or None when there is none or it is unreadable (it is then rewritten)."""
    from export_kit.explain.core import Explanation

    path = Path(folder) / REPORT_JSON
    try:
        report = Report.from_dict(read_json(path))
        report.verify_rows(), report.bench_rows(), report.recommend(), report.failures()  # every section parses
        for entry in report.explanations:
            Explanation.from_dict(entry).check()
        return report
    except (ExportKitError, OSError, ValueError, TypeError, AttributeError, KeyError):
        return None
