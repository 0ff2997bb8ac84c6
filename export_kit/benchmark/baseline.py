"""A latency gate for CI: compare a bench run with a saved baseline (or another folder timed in the same run),
failing only on real slowdowns.

Each row's samples are per-worker-process medians. The ratio new/baseline gets a bootstrap 95% interval: paired
per process when both were timed in the same workers (``bench --against``), unpaired against a saved baseline.
The row is ``slower`` or ``faster`` when the interval excludes 1, ``no change`` when it lies inside the allowed
band, else ``too noisy``; the gate fails only when the whole interval lies above 1 + the allowed regression.
Runs from different environments (CPU, core count, library versions, thread settings) are not compared unless
the caller says so, because their difference says nothing about the artifact.
"""

from __future__ import annotations

from pathlib import Path

from export_kit.errors import UsageError
from export_kit.results import BenchResult, GateResult, Status
from export_kit.runners.base import threads_of
from export_kit.safeio.atomic import write_json
from export_kit.safeio.limits import read_json
from export_kit.verification.stats import latency_verdict, ratio_ci

BASELINE_FORMAT = "exportkit-bench-baseline"
#: Environment fields that must match for latencies to be comparable.
FINGERPRINT_KEYS = ("cpu", "cpu_cores", "machine", "torch", "onnxruntime", "onnx", "torch_threads", "cuda")


def row_key(row: BenchResult) -> str:
    return f"{row.artifact}/{row.runtime}/{row.device}/batch{row.batch}"


def save_baseline(path: Path, rows: list[BenchResult], environment: dict) -> None:
    write_json(Path(path), {"format": BASELINE_FORMAT, "version": 1, "environment": environment,
                            "rows": [r.to_dict() for r in rows if r.status == Status.PASSED]})


def load_baseline(path: Path) -> tuple[dict, list[BenchResult]]:
    if not Path(path).exists():
        raise UsageError(f"--baseline {path} does not exist; write one with --save-baseline")
    data = read_json(Path(path), UsageError)  # a FIFO, a device or an oversized file: one line, exit 2
    if not isinstance(data, dict) or data.get("format") != BASELINE_FORMAT:
        raise UsageError(f"--baseline {path} is not an exportkit bench baseline")
    rows, environment = data.get("rows", []), data.get("environment", {})
    if not isinstance(rows, list) or not all(isinstance(r, dict) for r in rows) or not isinstance(environment, dict):
        raise UsageError(f"--baseline {path} has malformed rows or environment")
    try:
        return environment, [BenchResult.from_dict(r) for r in rows]
    except TypeError as exc:
        raise UsageError(f"--baseline {path} has a malformed row: {exc}") from None


def environment_mismatch(baseline: dict, current: dict) -> list[str]:
    return [f"{k}: {baseline.get(k)!r} -> {current.get(k)!r}" for k in FINGERPRINT_KEYS
            if baseline.get(k) != current.get(k)]


def judge(key: str, base: BenchResult, cur: BenchResult, max_regression: float, *, paired: bool) -> GateResult:
    """One row against its baseline: the bootstrap interval of new/baseline decides the verdict, and only a
    slowdown whose whole interval lies above 1 + ``max_regression`` fails."""
    if threads_of(base.settings) != threads_of(cur.settings):
        raise UsageError(f"refusing to compare {key}: thread settings differ ({base.settings} vs {cur.settings})")
    new, old = cur.process_p50_ms or [cur.p50_ms], base.process_p50_ms or [base.p50_ms]
    if paired and len(new) != len(old):
        raise UsageError(f"refusing to compare {key}: {len(new)} and {len(old)} worker samples are not paired")
    point, low, high = ratio_ci(new, old, paired=paired)
    verdict, needed = latency_verdict(point, low, high, max_regression, min(len(new), len(old)))
    result = GateResult(key, verdict, base.p50_ms, cur.p50_ms, point - 1.0, ratio_ci95=[low, high],
                        samples_needed=needed)
    interval = f"new/baseline {point:.3f} [{low:.3f}, {high:.3f}]"
    if verdict == "slower" and low > 1.0 + max_regression:
        result.status = Status.FAILED
        result.detail = f"{interval} lies wholly above the allowed 1 + {max_regression:.0%}"
    elif verdict == "slower":
        result.detail = f"{interval}: slower, within the allowed {max_regression:.0%}"
    elif verdict == "too noisy":
        result.detail = f"{interval}: about {needed} worker processes per side would decide" if needed else interval
    else:
        result.detail = interval
    return result


def compare(rows: list[BenchResult], environment: dict, baseline_path: Path, max_regression: float,
            allow_env_mismatch: bool = False) -> list[GateResult]:
    base_env, base_rows = load_baseline(baseline_path)
    mismatch = environment_mismatch(base_env, environment)
    if mismatch and not allow_env_mismatch:
        raise UsageError(f"refusing to compare with {baseline_path}: environment differs ({'; '.join(mismatch)}); "
                         "rebuild the baseline here, or pass --allow-env-mismatch")
    return compare_rows(rows, base_rows, max_regression, paired=False)


def compare_rows(rows: list[BenchResult], base_rows: list[BenchResult], max_regression: float, *,
                 paired: bool) -> list[GateResult]:
    """Every timed row against the baseline row with the same key; rows on one side only are new or missing."""
    base = {row_key(r): r for r in base_rows if r.status == Status.PASSED}
    current = {row_key(r): r for r in rows if r.status == Status.PASSED}
    results = [judge(k, base[k], r, max_regression, paired=paired) if k in base
               else GateResult(k, "new", p50_ms=r.p50_ms) for k, r in current.items()]
    results += [GateResult(k, "missing", b.p50_ms, detail="in the baseline, not measured now")
                for k, b in base.items() if k not in current]
    return results


def parse_fraction(text: str) -> float:
    """``"10%"`` or ``"0.1"`` -> 0.1."""
    try:
        value = float(text[:-1]) / 100 if text.endswith("%") else float(text)
    except ValueError:
        value = -1.0
    if not 0 <= value < 10:
        raise UsageError(f"--max-regression takes a percentage like 10% (or a fraction like 0.1), got {text!r}")
    return value
