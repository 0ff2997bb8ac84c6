"""Result records. Each is truthy when it passed and round-trips through JSON (``to_dict`` / ``from_dict``)."""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, field, fields
from typing import Any


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


@dataclass
class Check(Record):
    """One named check with what was observed and the limit it was held to."""

    name: str
    passed: bool
    observed: Any = None
    limit: Any = None
    detail: str = ""


@dataclass
class VerifyResult(Record):
    artifact: str
    format: str
    runtime: str
    device: str
    precision: str
    status: str = "passed"  # passed | failed | skipped
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
    class_metrics: dict | None = None  # confusion matrix, per-class precision/recall/F1 (export_kit.metrics)
    min_passing: dict = field(default_factory=dict)

    def __bool__(self) -> bool:
        return self.status != "failed"

    def to_dict(self) -> dict:
        return {**super().to_dict(), "passed": bool(self)}

    def add(self, check: Check) -> Check:
        self.checks.append(check.to_dict())
        if not check.passed:
            self.status = "failed"
            self.reason = "; ".join(filter(None, [self.reason, f"{check.name}: {check.detail}"]))
        return check

    def observe(self, key: str, value: float, worst) -> None:
        """Track the tolerance that would just have passed: ``worst`` picks between old and new."""
        old = self.min_passing.get(key)
        self.min_passing[key] = value if old is None else worst(old, value)

    def failed_checks(self) -> list[str]:
        return [c["name"] for c in self.checks if not c["passed"]]


@dataclass
class BenchResult(Record):
    artifact: str
    format: str
    runtime: str
    device: str
    batch: int
    status: str = "ok"  # ok | skipped | failed
    reason: str = ""
    p50_ms: float | None = None
    p90_ms: float | None = None
    p99_ms: float | None = None
    mean_ms: float | None = None
    min_ms: float | None = None
    iterations: int = 0
    throughput_per_s: float | None = None
    speedup_vs_eager: float | None = None
    round_p50_ms: list[float] = field(default_factory=list)
    noise: float | None = None
    noisy: bool = False
    file_bytes: int | None = None
    settings: dict = field(default_factory=dict)

    def __bool__(self) -> bool:
        return self.status != "failed"
