"""Which timed row wins a target, and when the measurements cannot tell the leaders apart.

Rows of one bench run were timed in the same worker processes, interleaved, so two rows are compared by the paired
bootstrap interval of their per-process medians' ratio: one is faster only when that interval lies wholly on one
side of 1. A noisy row is compared the same way (its wide interval is exactly what makes it hard to rank), never
dropped, so a verdict cannot name a slower file because the faster one was noisy. Rows without per-process
medians (timed in one process) fall back to a 5% margin, the spread such rows show between runs.
"""

from __future__ import annotations

import math
from collections.abc import Callable

from export_kit.results import BenchResult
from export_kit.verification.stats import ratio_ci

#: Single-process rows: a p50 this much larger is slower; anything closer is a tie.
MARGIN = 0.05
#: The most worker processes a "rerun with --processes N" suggestion names.
MAX_PROCESSES = 100


Ratio = tuple[float, float, float]


def paired_ratio(a: BenchResult, b: BenchResult) -> Ratio | None:
    """The median of a/b over the worker processes that timed both, with its paired bootstrap 95% interval; None
    for rows not timed in the same processes."""
    if len(a.process_p50_ms) == len(b.process_p50_ms) >= 2:
        return ratio_ci(a.process_p50_ms, b.process_p50_ms, paired=True)
    return None


def _faster(a: BenchResult, b: BenchResult, ratio: Ratio | None) -> bool:
    """``a`` beats ``b`` beyond the noise of this run (``ratio``: their :func:`paired_ratio`)."""
    if ratio is not None:
        return ratio[2] < 1.0
    if a.noisy or b.noisy:
        return False
    return b.p50_ms > (1 + MARGIN) * a.p50_ms


def _processes_to_rank(processes: int, ratio: Ratio) -> int | None:
    """Worker processes that would likely separate two tied rows: the interval narrows as one over the square
    root of the processes, so it must shrink from its half-width to the distance of the ratio from 1."""
    point, low, high = ratio
    distance = abs(point - 1.0)
    if distance == 0:
        return None
    needed = math.ceil(processes * ((high - low) / 2 / distance) ** 2) + 1
    return min(max(needed, processes + 1), MAX_PROCESSES)


def pick(rows: list[BenchResult], label: str, metric: str) -> dict:
    """The fastest row, and every row that cannot be told apart from it, with the processes that could."""
    best = min(rows, key=lambda b: b.p50_ms)
    tied, needed = [], []
    for row in sorted((r for r in rows if r is not best), key=lambda r: r.p50_ms):
        ratio = paired_ratio(best, row)
        if _faster(best, row, ratio):
            continue
        tied.append(row)
        if ratio is not None and (n := _processes_to_rank(len(best.process_p50_ms), ratio)):
            needed.append(n)
    return {"target": label, "artifact": best.artifact, "runtime": best.runtime, "device": best.device,
            "batch": best.batch, "p50_ms": best.p50_ms, "p50_ci95_ms": best.p50_ci95_ms,
            "throughput_per_s": best.throughput_per_s, "speedup_vs_eager": best.speedup_vs_eager,
            "speedup_ci95": best.speedup_ci95, "metric": metric,
            "tied_with": [{"artifact": r.artifact, "runtime": r.runtime, "p50_ms": r.p50_ms} for r in tied],
            "processes_to_rank": max(needed) if needed else None}


def recommend(timed: list[BenchResult],
              targets: list[tuple[str, Callable[[BenchResult], bool], str]]) -> list[dict]:
    """One pick per target that has rows. A throughput target is judged at the largest batch timed for it, noisy
    rows included, so its line never quotes a smaller batch because the larger one was noisy."""
    picks = []
    for label, keep, metric in targets:
        rows = [b for b in timed if keep(b)]
        if metric == "throughput_per_s" and rows:
            largest = max(b.batch for b in rows)
            rows = [b for b in rows if b.batch == largest]
        if rows:
            picks.append(pick(rows, label, metric))
    return picks
