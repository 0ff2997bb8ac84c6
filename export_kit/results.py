"""Result records: one status vocabulary (:class:`Status`), ``.passed`` on each, and a JSON round trip
(``to_dict`` / ``from_dict``)."""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, field, fields
from enum import StrEnum
from typing import Any


class Status(StrEnum):
    """Every record's status: it ran and met its bounds, it ran and did not, or it could not run here."""

    PASSED = "passed"
    FAILED = "failed"
    SKIPPED = "skipped"


def _clean(value: Any) -> Any:
    """JSON has no inf/nan: write them as strings so report.json stays standard JSON."""
    if isinstance(value, float) and not math.isfinite(value):
        return str(value)
    if isinstance(value, dict):
        return {k: _clean(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_clean(v) for v in value]
    return value


def _unclean(value: Any) -> Any:
    if isinstance(value, str) and value in ("inf", "-inf", "nan"):
        return float(value)
    return value


class Record:
    """Mixin: dict/JSON round trip that ignores unknown keys (newer files stay readable)."""

    def to_dict(self) -> dict:
        return _clean(asdict(self))  # type: ignore[call-overload]

    @classmethod
    def from_dict(cls, data: dict):
        names = {f.name for f in fields(cls)}  # type: ignore[arg-type]
        return cls(**{k: _unclean(v) for k, v in data.items() if k in names})


class StatusRecord(Record):
    """Mixin for records with a ``status``: passed unless it failed (a skipped row did not run, and did not fail)."""

    status: str

    @property
    def passed(self) -> bool:
        return self.status != Status.FAILED


@dataclass
class Check(Record):
    """One named check with what was observed and the limit it was held to."""

    name: str
    passed: bool
    observed: Any = None
    limit: Any = None
    detail: str = ""


@dataclass
class VerifyResult(StatusRecord):
    artifact: str
    format: str
    runtime: str
    device: str
    precision: str
    status: str = Status.PASSED
    reason: str = ""
    checks: list[dict] = field(default_factory=list)
    tolerance: dict = field(default_factory=dict)
    max_abs_err: float | None = None
    p99_abs_err: float | None = None
    cosine: float | None = None
    top1_agreement: float | None = None
    accuracy: float | None = None
    reference_accuracy: float | None = None
    accuracy_ci95: list[float] | None = None
    mcnemar: dict | None = None
    per_class_delta: list[float | None] | None = None
    # confusion matrix, per-class precision/recall/F1 (export_kit.verification.metrics)
    class_metrics: dict | None = None
    accuracy_measured: str | None = None  # set when the accuracy fields were carried over from a signed record
    accuracy_signed_by: str | None = None  # the public key (hex) that signed that record (export_kit.folder.measured)
    min_passing: dict = field(default_factory=dict)
    target: str = "local"  # where it ran: this machine, or a remote target's name (--target NAME=URL)

    def to_dict(self) -> dict:
        return {**super().to_dict(), "passed": self.passed}

    def add(self, check: Check) -> Check:
        self.checks.append(check.to_dict())
        if not check.passed:
            self.status = Status.FAILED
            self.reason = "; ".join(filter(None, [self.reason, f"{check.name}: {check.detail}"]))
        return check

    def observe(self, key: str, value: float, worst) -> None:
        """Track the tolerance that would just have passed: ``worst`` picks between old and new."""
        old = self.min_passing.get(key)
        self.min_passing[key] = value if old is None else worst(old, value)

    def failed_checks(self) -> list[str]:
        return [c["name"] for c in self.checks if not c["passed"]]


@dataclass
class BenchResult(StatusRecord):
    artifact: str
    format: str
    runtime: str
    device: str
    batch: int
    status: str = Status.PASSED
    reason: str = ""
    p50_ms: float | None = None
    p90_ms: float | None = None
    p99_ms: float | None = None
    mean_ms: float | None = None
    min_ms: float | None = None
    iterations: int = 0
    throughput_per_s: float | None = None
    speedup_vs_eager: float | None = None
    speedup_ci95: list[float] | None = None  # paired bootstrap 95% interval of eager/this over the processes
    process_p50_ms: list[float] = field(default_factory=list)  # one median per worker process
    p50_ci95_ms: list[float] | None = None  # bootstrap 95% interval of p50_ms over the worker processes
    noise: float | None = None  # spread of process_p50_ms, (max - min) / median
    noisy: bool = False
    file_bytes: int | None = None
    settings: dict = field(default_factory=dict)
    tuned: dict | None = None  # the settings bench --tune chose ({}: the runtime's defaults)
    tuning: list[dict] | None = None  # every candidate: options, p50_ms, vs_default [ratio, low, high]

    @classmethod
    def from_dict(cls, data: dict):
        """Reports and baselines written before the shared vocabulary called a timed row "ok", and before each
        sample was a worker process (``round_p50_ms`` held rounds inside one process)."""
        data = {**data, "status": Status.PASSED if data.get("status") == "ok" else data.get("status", Status.PASSED)}
        if "round_p50_ms" in data:
            data.setdefault("process_p50_ms", data.pop("round_p50_ms"))
        return super().from_dict(data)


#: What the latency gate concluded for a row, and the status that verdict gives it.
#: A gate verdict's status. ``slower`` alone depends on the allowed regression: the comparison sets it.
VERDICTS = {"no change": Status.PASSED, "faster": Status.PASSED, "too noisy": Status.PASSED,
            "new": Status.SKIPPED, "missing": Status.SKIPPED}


@dataclass
class GateResult(StatusRecord):
    """One bench row against its baseline row; ``status`` follows from ``verdict``."""

    key: str
    verdict: str
    baseline_p50_ms: float | None = None
    p50_ms: float | None = None
    change: float | None = None  # relative change of the median, + is slower
    detail: str = ""
    status: str = Status.PASSED
    ratio_ci95: list[float] | None = None  # bootstrap 95% interval of new/baseline
    samples_needed: int | None = None  # for "too noisy": worker processes per side that could decide

    def __post_init__(self) -> None:
        if self.verdict != "slower":
            self.status = VERDICTS.get(self.verdict, Status.SKIPPED)

    @classmethod
    def from_dict(cls, data: dict):
        """Reports written before verdicts kept the gate's word in ``status`` ("ok" meant no change), and before
        the statistical verdicts said "regressed" and "improved"."""
        if "verdict" not in data:
            data = {**data, "verdict": {"ok": "no change"}.get(data.get("status"), data.get("status", "new"))}
        renamed = {"regressed": "slower", "improved": "faster"}
        return super().from_dict({**data, "verdict": renamed.get(data["verdict"], data["verdict"])})
