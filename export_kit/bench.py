"""Latency: the same timing loop for every backend, percentiles rather than a mean, and the settings used.

Each (artifact, target, batch) warms up, then runs until both a minimum count and a minimum time are reached.
Device work is synchronized inside the timed region so asynchronous backends are not flattered. The eager
model is always a row, so each speed-up is a ratio measured in the same run on the same machine.
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

from export_kit.errors import UnavailableError, first_line
from export_kit.folder import ArtifactsFolder
from export_kit.results import BenchResult
from export_kit.runners import Runner, targets_for, unavailable_reason
from export_kit.runners.base import accelerator_of


@dataclass(frozen=True)
class BenchConfig:
    """Per round: at least ``min_iters`` calls and ``min_time_s`` seconds. Rounds measure run-to-run noise."""

    warmup_s: float = 0.2
    min_iters: int = 20
    min_time_s: float = 0.2
    max_iters: int = 100_000
    rounds: int = 3


#: A row whose round medians spread by more than this (relative to the median) is flagged noisy.
NOISY_SPREAD = 0.10


def threads_for(batch: int) -> int:
    """One intra-op thread is fastest for a single small image (no fork/join cost); batches use every core."""
    return 1 if batch == 1 else (os.cpu_count() or 1)


def time_runner(runner: Runner, batch: np.ndarray, cfg: BenchConfig) -> list[np.ndarray]:
    """Per-call latencies in milliseconds, one array per round."""
    deadline = time.perf_counter() + cfg.warmup_s
    while time.perf_counter() < deadline:
        runner.run_one(batch)
    runner.synchronize()
    rounds = []
    for _ in range(cfg.rounds):
        times = []
        start = time.perf_counter()
        while len(times) < cfg.max_iters and (len(times) < cfg.min_iters
                                               or time.perf_counter() - start < cfg.min_time_s):
            t0 = time.perf_counter_ns()
            runner.run_one(batch)
            runner.synchronize()
            times.append(time.perf_counter_ns() - t0)
        rounds.append(np.asarray(times, dtype=np.float64) / 1e6)
    return rounds


def summarize(row: BenchResult, rounds: list[np.ndarray]) -> BenchResult:
    ms = np.concatenate(rounds)
    row.p50_ms, row.p90_ms, row.p99_ms = (float(np.percentile(ms, q)) for q in (50, 90, 99))
    row.mean_ms, row.min_ms, row.iterations = float(ms.mean()), float(ms.min()), len(ms)
    row.throughput_per_s = row.batch * 1000.0 / row.p50_ms
    row.round_p50_ms = [float(np.median(r)) for r in rounds]
    row.noise = (max(row.round_p50_ms) - min(row.round_p50_ms)) / row.p50_ms
    row.noisy = row.noise > NOISY_SPREAD
    return row


def _batch_of(inputs: np.ndarray, batch: int) -> np.ndarray:
    """``batch`` real golden inputs, repeated when the folder holds fewer."""
    reps = -(-batch // len(inputs))
    return np.ascontiguousarray(np.concatenate([inputs] * reps)[:batch])


def bench_folder(folder: ArtifactsFolder, batches: list[int], cfg: BenchConfig = BenchConfig(), *,
                 devices: tuple[str, ...] | None = None,
                 on_row: Callable[[BenchResult], None] | None = None) -> list[BenchResult]:
    rows = []
    inputs = {batch: _batch_of(folder.golden().inputs, batch) for batch in batches}
    for artifact in folder.manifest.artifacts:
        for target in targets_for(artifact.runtime, devices):
            for batch in batches:
                row = BenchResult(artifact.name, artifact.format, target.runtime, target.device, batch,
                                  file_bytes=artifact.bytes)
                row.reason = unavailable_reason(target) or ""
                if row.reason:
                    row.status = "skipped"
                else:
                    _bench_one(folder, artifact, target, inputs[batch], cfg, row)
                rows.append(row)
                if on_row:
                    on_row(row)
    _add_speedups(rows)
    return rows


def _bench_one(folder, artifact, target, batch: np.ndarray, cfg: BenchConfig, row: BenchResult) -> None:
    try:
        with folder.runner(artifact, target, threads=threads_for(len(batch))) as runner:
            rounds = time_runner(runner, batch, cfg)
            row.settings = dict(runner.settings)
        summarize(row, rounds)
    except UnavailableError as exc:
        row.status, row.reason = "skipped", str(exc)
    except Exception as exc:
        row.status, row.reason = "failed", first_line(exc)


def _add_speedups(rows: list[BenchResult]) -> None:
    eager = {(r.device, r.batch): r.p50_ms for r in rows if r.runtime == "eager" and r.p50_ms}
    for r in rows:
        base = eager.get((accelerator_of(r.device), r.batch))
        if r.p50_ms and base:
            r.speedup_vs_eager = base / r.p50_ms
