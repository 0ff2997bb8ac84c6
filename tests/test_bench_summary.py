"""The bench summary's arithmetic, on samples whose answers are known: a row's figures, its noise flag, and its
speed-up over eager (which way round the ratio goes decides which file the verdict ships)."""

from __future__ import annotations

import pytest

from export_kit.benchmark.run import NOISY_SPREAD, _add_speedups, summarize
from export_kit.benchmark.sampling import Sample
from export_kit.results import BenchResult


def _row(artifact: str = "onnx", runtime: str = "onnxruntime", batch: int = 1) -> BenchResult:
    return BenchResult(artifact, artifact, runtime, "cpu", batch)


def _samples(p50s: list[float]) -> list[Sample]:
    return [Sample(p50=p, p90=p * 1.1, p99=p * 1.2, mean=p, min=p * 0.9, calls=100) for p in p50s]


def test_a_row_is_the_median_of_its_worker_processes():
    row = summarize(_row(batch=4), _samples([2.0, 1.0, 3.0]))
    assert row.p50_ms == 2.0 and row.p90_ms == pytest.approx(2.2) and row.min_ms == pytest.approx(0.9)
    assert row.iterations == 300 and row.throughput_per_s == pytest.approx(4 * 1000 / 2.0)
    assert row.process_p50_ms == [2.0, 1.0, 3.0] and row.noise == pytest.approx(1.0)


@pytest.mark.parametrize("spread, noisy", [(0.0, False), (NOISY_SPREAD * 0.5, False), (NOISY_SPREAD * 3, True)])
def test_a_row_is_noisy_exactly_when_its_processes_disagree_beyond_the_spread(spread, noisy):
    row = summarize(_row(), _samples([1.0, 1.0 + spread / 2, 1.0 + spread]))
    assert row.noisy is noisy


def test_one_process_is_never_called_noisy_and_has_no_interval():
    row = summarize(_row(), _samples([5.0]))
    assert row.noisy is False and row.p50_ci95_ms is None


def test_a_failed_process_decides_the_row():
    row = summarize(_row(), [*_samples([1.0]), Sample(status="failed", reason="worker died")])
    assert row.status == "failed" and row.reason == "worker died" and row.p50_ms is None


def test_the_speed_up_is_eager_time_over_the_rows_time():
    eager = summarize(_row("pytorch", "eager"), _samples([4.0, 4.0, 4.0]))
    fast = summarize(_row("onnx"), _samples([1.0, 1.0, 1.0]))
    slow = summarize(_row("int8-onnx"), _samples([8.0, 8.0, 8.0]))
    _add_speedups([eager, fast, slow])
    assert fast.speedup_vs_eager == pytest.approx(4.0) and slow.speedup_vs_eager == pytest.approx(0.5)
    assert eager.speedup_vs_eager == pytest.approx(1.0)
