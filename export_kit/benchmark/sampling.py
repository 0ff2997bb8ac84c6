"""Latency samples from fresh worker processes, interleaved across rows.

Two processes running the same code on the same machine can differ in latency far more than two rounds inside
one process (memory layout, thread placement, what else the machine runs at the time). So each sample is one
short worker process: it opens every row's runner, warms each up, then times the rows in turn for several short
slices (A B C C B A ...), and reports per row the percentiles of all its calls. A machine that slows down
mid-run slows every row alike, and each worker starts the rotation at another row, so no row always runs first.
Rows of two folders compared A/B are planned side by side, so each pair is timed back to back.

``processes=0`` measures in the calling process instead: one sample per row, for quick library use and tests.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np

from export_kit.errors import UnavailableError, UsageError, first_line
from export_kit.folder.golden import repeated


@dataclass(frozen=True)
class SamplingConfig:
    """``processes`` worker processes; in each, ``passes`` timed slices per row of at least ``slice_iters`` calls
    and ``slice_s`` seconds, after ``warmup_s`` per row."""

    processes: int = 7
    passes: int = 4
    slice_s: float = 0.05
    slice_iters: int = 5
    warmup_s: float = 0.1
    max_iters: int = 100_000
    worker_timeout_s: float = 600.0


#: ``bench --quick``: three workers and fewer slices, under half the time for intervals about 1.5x wider.
QUICK = SamplingConfig(processes=3, passes=3)


@dataclass(frozen=True)
class RowSpec:
    """One (folder, artifact, target, batch) to time, with the intra-op threads its runner gets, or the settings
    (a tuning candidate or those a tuning run recorded) that replace them."""

    folder: int
    artifact: str
    runtime: str
    device: str
    batch: int
    threads: int
    options: dict | None = None


@dataclass
class FolderSpec:
    """How a worker reopens a folder: its path and the trust the user granted (re-derived in the worker)."""

    path: str
    trust_keys: list[str] = field(default_factory=list)
    trust_code: bool = False
    factories: list[str] = field(default_factory=list)


@dataclass
class Sample:
    """One worker's measurement of one row: call-latency percentiles in ms, or why it did not run."""

    status: str = "passed"
    reason: str = ""
    p50: float | None = None
    p90: float | None = None
    p99: float | None = None
    mean: float | None = None
    min: float | None = None
    calls: int = 0
    settings: dict = field(default_factory=dict)


def sample_rows(folders: list[FolderSpec], rows: list[RowSpec], cfg: SamplingConfig,
                on_process: Callable[[int], None] | None = None) -> list[list[Sample]]:
    """Per row, one :class:`Sample` per worker process (in process order)."""
    per_row: list[list[Sample]] = [[] for _ in rows]
    for index in range(max(cfg.processes, 1)):
        request = {"folders": [asdict(f) for f in folders], "rows": [asdict(r) for r in rows],
                   "offset": index, "config": asdict(cfg)}
        result = measure(request) if cfg.processes == 0 else _in_worker(request, cfg.worker_timeout_s)
        for samples, sample in zip(per_row, result, strict=True):
            samples.append(sample)
        if on_process:
            on_process(index)
    return per_row


def _in_worker(request: dict, timeout: float) -> list[Sample]:
    """Run :func:`measure` in a fresh interpreter that imports this same package."""
    env = dict(os.environ)
    root = str(Path(__file__).resolve().parents[2])
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [root, env.get("PYTHONPATH")]))
    try:
        done = subprocess.run([sys.executable, "-m", "export_kit.benchmark.sampling"], input=json.dumps(request),
                              text=True, capture_output=True, env=env, timeout=timeout, check=False)
    except subprocess.TimeoutExpired:
        raise UsageError(f"a bench worker process ran longer than {timeout:.0f} s") from None
    if done.returncode != 0:
        tail = (done.stderr.strip().splitlines() or ["no output"])[-1]
        raise UsageError(f"a bench worker process exited with {done.returncode}: {tail}")
    *printed, last = done.stdout.strip().splitlines() or ["{}"]  # the result is the worker's last line
    if any(line.strip() for line in printed):  # what loaded code printed must not vanish with the worker
        sys.stderr.write("".join(f"bench worker: {line}\n" for line in printed if line.strip()))
    return [Sample(**s) for s in json.loads(last)["rows"]]


def measure(request: dict) -> list[Sample]:
    """Open every row's runner, warm each up, then time the rows interleaved; one :class:`Sample` per row."""
    cfg = SamplingConfig(**request["config"])
    rows = [RowSpec(**r) for r in request["rows"]]
    folders = [_open(FolderSpec(**f)) for f in request["folders"]]
    samples = [Sample() for _ in rows]
    runners: dict[int, object] = {}
    inputs: dict[int, np.ndarray] = {}
    try:
        for i, row in enumerate(rows):
            _start(folders[row.folder], row, samples[i], runners, inputs, i, cfg)
        times: dict[int, list[float]] = {i: [] for i in runners}
        order = list(runners)
        shift = request.get("offset", 0) % max(len(order), 1)
        order = order[shift:] + order[:shift]
        for p in range(cfg.passes):  # every other pass runs backwards: a drift within the process evens out
            for i in [i for i in (order if p % 2 == 0 else order[::-1]) if i in runners]:
                try:
                    time_slice(runners[i], inputs[i], cfg, times[i])
                except Exception as exc:
                    samples[i].status, samples[i].reason = "failed", first_line(exc)
                    runners.pop(i).close()
        for i in runners:
            _summarize(samples[i], np.asarray(times[i]))
    finally:
        for runner in runners.values():
            runner.close()
    return samples


def _open(spec: FolderSpec):
    from export_kit.folder.access import Access, open_folder

    access = Access(tuple(Path(p) for p in spec.trust_keys), spec.trust_code, tuple(spec.factories))
    return open_folder(Path(spec.path), access, writes=False)[0]


def _start(folder, row: RowSpec, sample: Sample, runners: dict, inputs: dict, i: int, cfg: SamplingConfig) -> None:
    """Open and warm up one row's runner; a row that cannot run is recorded as skipped or failed."""
    from export_kit.runners import Target

    try:
        runner = folder.runner(folder.manifest.artifact(row.artifact), Target(row.runtime, row.device),
                               threads=row.threads, options=row.options)
    except UnavailableError as exc:
        sample.status, sample.reason = "skipped", str(exc)
        return
    except Exception as exc:
        sample.status, sample.reason = "failed", first_line(exc)
        return
    runners[i] = runner
    inputs[i] = [batch_of(x, row.batch) for x in folder.golden().inputs]
    sample.settings = dict(runner.settings)
    try:
        runner.prepare()
        runner.run(dict(zip((s.name for s in runner.io.inputs), inputs[i], strict=True)))  # the checked call: the
        deadline = time.perf_counter() + cfg.warmup_s  # timed ones skip the feed checks
        while time.perf_counter() < deadline:
            runner.run_unchecked(inputs[i])
        runner.synchronize()
    except Exception as exc:
        sample.status, sample.reason = "failed", first_line(exc)
        runners.pop(i).close()


def time_slice(runner, feed: list[np.ndarray], cfg: SamplingConfig, times: list[float]) -> None:
    """Time calls on ``feed`` (one batch per model input) for one slice."""
    runner.prepare()
    start, count = time.perf_counter(), 0
    while count < cfg.max_iters and (count < cfg.slice_iters or time.perf_counter() - start < cfg.slice_s):
        t0 = time.perf_counter_ns()
        runner.run_unchecked(feed)
        runner.synchronize()
        times.append((time.perf_counter_ns() - t0) / 1e6)
        count += 1


def _summarize(sample: Sample, ms: np.ndarray) -> None:
    sample.p50, sample.p90, sample.p99 = (float(np.percentile(ms, q)) for q in (50, 90, 99))
    sample.mean, sample.min, sample.calls = float(ms.mean()), float(ms.min()), len(ms)


def batch_of(inputs: np.ndarray, batch: int) -> np.ndarray:
    """``batch`` real golden inputs, repeated when the folder holds fewer."""
    return np.ascontiguousarray(repeated(inputs, batch)[:batch])


def _main() -> None:
    samples = measure(json.loads(sys.stdin.read()))
    sys.stdout.write("\n" + json.dumps({"rows": [asdict(s) for s in samples]}) + "\n")


if __name__ == "__main__":
    _main()
