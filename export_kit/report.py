"""The report: verify and bench rows plus the environment, as report.json for programs and report.md for people.

``verify`` and ``bench`` each rewrite only their own section, so either command can be rerun alone.
"""

from __future__ import annotations

import json
import time
from dataclasses import dataclass, field
from pathlib import Path

from export_kit.fileio import write_json, write_text
from export_kit.results import BenchResult, Record, VerifyResult

REPORT_JSON = "report.json"
REPORT_MD = "report.md"


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

    def verify_rows(self) -> list[VerifyResult]:
        return [VerifyResult.from_dict(r) for r in self.verify]

    def bench_rows(self) -> list[BenchResult]:
        return [BenchResult.from_dict(r) for r in self.bench]

    def failures(self) -> list[str]:
        """One line per failure: export failures, failed verify rows, failed bench rows."""
        lines = [f"{f['format']}: export failed: {f['reason']}" for f in self.export_failures]
        lines += [f"{r.artifact} on {r.runtime}/{r.device}: {', '.join(r.failed_checks()) or 'failed'}: {r.reason}"
                  for r in self.verify_rows() if not r]
        lines += [f"{r.artifact} on {r.runtime}/{r.device} batch {r.batch}: bench failed: {r.reason}"
                  for r in self.bench_rows() if not r]
        return lines

    def __bool__(self) -> bool:
        return not self.failures()

    def save(self, folder: Path) -> None:
        from export_kit.report_md import render

        write_json(Path(folder) / REPORT_JSON, self.to_dict())
        write_text(Path(folder) / REPORT_MD, render(self))


def load_report(folder: Path) -> Report | None:
    """The folder's existing report, or None when there is none or it is unreadable (it is then rewritten)."""
    path = Path(folder) / REPORT_JSON
    try:
        return Report.from_dict(json.loads(path.read_text(encoding="utf-8")))
    except (OSError, ValueError, TypeError):
        return None
