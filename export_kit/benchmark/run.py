"""Latency: the same timing loop for every backend, sampled in fresh worker processes
(``export_kit.benchmark.sampling``).

A row's latency is the median over worker processes of each process's median call, with a bootstrap 95%
interval of that median and the spread between processes; p90/p99 are the medians of the per-process
percentiles. Device work is synchronized inside the timed region so asynchronous backends are not flattered.
The eager model is always a row, so each speed-up is a ratio measured in the same run on the same machine.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

from export_kit.benchmark.ranking import paired_ratio
from export_kit.benchmark.sampling import FolderSpec, RowSpec, Sample, SamplingConfig, sample_rows
from export_kit.benchmark.tuning import choose, recorded_options
from export_kit.folder.load import ArtifactsFolder
from export_kit.results import BenchResult, Status
from export_kit.runners import RUNTIMES, targets_for, unavailable_reason
from export_kit.runners.base import accelerator_of
from export_kit.verification.stats import bootstrap_median_ci

#: A row whose worker-process medians spread by more than this (relative to their median) is flagged noisy.
NOISY_SPREAD = 0.10


def threads_for(batch: int) -> int:
    """One intra-op thread is fastest for a single small image (no fork/join cost); batches use every core."""
    return 1 if batch == 1 else (os.cpu_count() or 1)


@dataclass
class Bench:
    """One folder to time, and how a worker process reopens it."""

    folder: ArtifactsFolder
    spec: FolderSpec


def plan(benches: list[Bench], batches: list[int], devices: tuple[str, ...] | None,
         tune: bool = False) -> tuple[list[list[BenchResult]], list[tuple[BenchResult, RowSpec]]]:
    """Rows per folder, and the specs workers time with the row each fills: one per row, or with ``tune`` one per
    candidate setting. Targets not present on this machine are skipped here and cost no worker time; a file that
    no longer matches its manifest entry fails its rows untimed, as verify fails it: a latency measured on other
    bytes than the ones listed would be reported under the wrong name."""
    per_folder: list[list[BenchResult]] = []
    timed = []
    for index, bench in enumerate(benches):
        rows = []
        for artifact in bench.folder.manifest.artifacts:
            damaged = bench.folder.integrity_problem(artifact)
            for target in targets_for(artifact.runtime, devices):
                for batch in batches:
                    row = BenchResult(artifact.name, artifact.format, target.runtime, target.device, batch,
                                      file_bytes=artifact.total_bytes)
                    rows.append(row)
                    if damaged:
                        row.status, row.reason = Status.FAILED, f"integrity: {damaged}"
                        continue
                    if why := unavailable_reason(target):
                        row.status, row.reason = Status.SKIPPED, why
                        continue
                    recorded = recorded_options(bench.folder.manifest, row)
                    for options in (RUNTIMES[target.runtime].candidates(target.device, batch) if tune
                                    else [recorded]):
                        timed.append((row, RowSpec(index, artifact.name, target.runtime, target.device, batch,
                                                   threads_for(batch), options)))
        per_folder.append(rows)
    return per_folder, timed


def bench_folders(benches: list[Bench], batches: list[int], cfg: SamplingConfig, *,
                  devices: tuple[str, ...] | None = None, tune: bool = False,
                  on_process: Callable[[int], None] | None = None) -> list[list[BenchResult]]:
    """Time every artifact of every folder on every available target, all rows interleaved in the same workers
    (so two folders compared here are compared under the same conditions). Rows per folder, in manifest order.
    With ``tune``, every candidate setting of each row is timed and the row reports the one chosen."""
    per_folder, timed = plan(benches, batches, devices, tune)
    timed.sort(key=lambda pair: (_key(pair[1]), pair[1].folder))  # A/B rows side by side
    if timed:
        samples = sample_rows([b.spec for b in benches], [spec for _, spec in timed], cfg, on_process)
        by_row: dict[int, tuple[BenchResult, list[tuple[dict | None, list[Sample]]]]] = {}
        for (row, spec), row_samples in zip(timed, samples, strict=True):
            by_row.setdefault(id(row), (row, []))[1].append((spec.options, row_samples))
        for row, candidates in by_row.values():
            if tune:
                choose(row, candidates, summarize)
            else:
                summarize(row, candidates[0][1])
    for rows in per_folder:
        _add_speedups(rows)
    return per_folder


def _key(spec: RowSpec) -> tuple:
    return spec.artifact, spec.runtime, spec.device, spec.batch


def summarize(row: BenchResult, samples: list[Sample]) -> BenchResult:
    """Fold one row's per-process samples into the row; any process that could not run it decides its status."""
    bad = next((s for s in samples if s.status != Status.PASSED), None)
    if bad is not None:
        row.status, row.reason = bad.status, bad.reason
        return row
    p50s = [s.p50 for s in samples]
    row.process_p50_ms = p50s
    row.p50_ms = float(np.median(p50s))
    row.p90_ms, row.p99_ms = float(np.median([s.p90 for s in samples])), float(np.median([s.p99 for s in samples]))
    row.mean_ms, row.min_ms = float(np.median([s.mean for s in samples])), float(min(s.min for s in samples))
    row.iterations = sum(s.calls for s in samples)
    row.throughput_per_s = row.batch * 1000.0 / row.p50_ms
    row.p50_ci95_ms = list(bootstrap_median_ci(p50s)) if len(p50s) > 1 else None
    row.noise = (max(p50s) - min(p50s)) / row.p50_ms
    row.noisy = len(p50s) > 1 and row.noise > NOISY_SPREAD
    row.settings = samples[0].settings
    return row


def _add_speedups(rows: list[BenchResult]) -> None:
    """Each row's speed-up over eager PyTorch at the same batch, with its paired interval where both rows have
    per-process medians: a noisy eager row makes that interval wide, and the figure is never shown without it."""
    eager = {(r.device, r.batch): r for r in rows if r.runtime == "eager" and r.p50_ms}
    for r in rows:
        base = eager.get((accelerator_of(r.device), r.batch))
        if r.p50_ms and base:
            r.speedup_vs_eager = base.p50_ms / r.p50_ms
            if ratio := paired_ratio(base, r):
                r.speedup_ci95 = [ratio[1], ratio[2]]
