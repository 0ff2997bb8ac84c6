"""The latency gate: noise-aware, refuses apples-to-oranges comparisons, and fails CI only on real slowdowns."""

import json

import pytest
from test_cli import invoke

from export_kit.benchmark.baseline import compare, parse_fraction, save_baseline
from export_kit.errors import UsageError
from export_kit.results import BenchResult

ENV = {"cpu": "X", "cpu_cores": 2, "machine": "x86_64", "torch": "2", "onnxruntime": "1", "onnx": "1",
       "torch_threads": 2, "cuda": None}


def _row(p50, processes, batch=1):
    return BenchResult("onnx", "onnx", "onnxruntime", "cpu", batch, p50_ms=p50, process_p50_ms=processes,
                       settings={"intra_op_threads": 1})


def _gate(tmp_path, base_rows, cur_rows, env=ENV, **kw):
    path = tmp_path / "base.json"
    save_baseline(path, base_rows, ENV)
    return compare(cur_rows, env, path, kw.pop("max_regression", 0.10), **kw)


def test_same_run_passes(tmp_path):
    rows = [_row(1.0, [0.98, 1.0, 1.05])]
    assert [g.verdict for g in _gate(tmp_path, rows, rows)] == ["no change"]


def test_a_slowdown_beyond_threshold_and_noise_regresses(tmp_path):
    base = [_row(1.0, [0.98, 1.0, 1.02])]
    result = _gate(tmp_path, base, [_row(1.3, [1.28, 1.3, 1.33])])[0]
    assert result.verdict == "slower" and not result.passed and result.ratio_ci95[0] > 1.1


def test_a_baseline_30_percent_faster_fails(tmp_path):
    current = [_row(1.0, [0.97, 1.0, 1.03])]
    faster = [_row(0.7, [0.68, 0.7, 0.72])]
    result = _gate(tmp_path, faster, current)
    assert result[0].verdict == "slower" and not result[0].passed and result[0].change == pytest.approx(0.4286, 1e-3)


def test_a_slowdown_whose_interval_reaches_below_the_allowance_is_slower_but_passes(tmp_path):
    base = [_row(1.0, [0.9, 1.0, 1.15])]
    result = _gate(tmp_path, base, [_row(1.2, [1.2, 1.2, 1.3])])[0]
    assert result.verdict == "slower" and result.passed and 1.0 < result.ratio_ci95[0] < 1.1


def test_an_interval_across_both_edges_is_too_noisy_and_says_how_many_samples_would_decide(tmp_path):
    base = [_row(1.0, [0.7, 1.0, 1.4])]
    result = _gate(tmp_path, base, [_row(1.05, [0.75, 1.05, 1.5])])[0]
    assert result.verdict == "too noisy" and result.passed and result.samples_needed > 3


def test_new_and_missing_rows_are_reported_not_failed(tmp_path):
    result = _gate(tmp_path, [_row(1.0, [1.0], batch=8)], [_row(1.0, [1.0], batch=1)])
    assert sorted(g.verdict for g in result) == ["missing", "new"] and all(g.passed for g in result)


def test_environment_and_thread_mismatches_are_refused(tmp_path):
    with pytest.raises(UsageError, match="cpu: 'X' -> 'Y'"):
        _gate(tmp_path, [_row(1.0, [1.0])], [_row(1.0, [1.0])], env={**ENV, "cpu": "Y"})
    assert _gate(tmp_path, [_row(1.0, [1.0])], [_row(1.0, [1.0])], env={**ENV, "cpu": "Y"},
                 allow_env_mismatch=True)
    other = _row(1.0, [1.0])
    other.settings = {"intra_op_threads": 2}
    with pytest.raises(UsageError, match="thread settings differ"):
        _gate(tmp_path, [_row(1.0, [1.0])], [other])


@pytest.mark.parametrize("text, value", [("10%", 0.10), ("0.25", 0.25), ("0%", 0.0)])
def test_parse_fraction(text, value):
    assert parse_fraction(text) == pytest.approx(value)


@pytest.mark.parametrize("text", ["ten", "-5%", "2000%"])
def test_parse_fraction_refuses_nonsense(text):
    with pytest.raises(UsageError):
        parse_fraction(text)


@pytest.mark.slow
def test_cli_gate_against_itself_a_faster_baseline_and_another_machine(built_copy, tmp_path):
    base = tmp_path / "base.json"
    common = ["bench", "--artifacts", built_copy, "--batch", "1", "--device", "cpu", "--processes", "2"]
    assert invoke(*common, "--save-baseline", base).exit_code == 0
    data = json.loads(base.read_text())
    assert data["rows"] and all(len(r["process_p50_ms"]) == 2 for r in data["rows"])
    for row in data["rows"]:  # a baseline 3x faster than anything this machine can do
        row["p50_ms"] /= 3
        row["process_p50_ms"] = [v / 3 for v in row["process_p50_ms"]]
    faster = tmp_path / "faster.json"
    faster.write_text(json.dumps(data))
    result = invoke(*common, "--baseline", faster, "--max-regression", "10%")
    assert result.exit_code == 1 and "latency regressed" in result.output
    assert "## Latency gate" in (built_copy / "report.md").read_text()
    data["environment"]["cpu"] = "some other CPU"
    elsewhere = tmp_path / "elsewhere.json"
    elsewhere.write_text(json.dumps(data))
    result = invoke(*common, "--baseline", elsewhere)
    assert result.exit_code == 2 and "refusing to compare" in result.output


def test_recommendation_names_the_fastest_verified_artifact(built):
    report = json.loads((built[0] / "report.json").read_text())
    recs = {r["target"]: r for r in report["recommendation"]}
    cpu1 = recs["CPU, batch 1 (latency)"]
    fastest = min((b for b in report["bench"] if b["status"] == "passed" and b["device"] == "cpu" and b["batch"] == 1),
                  key=lambda b: b["p50_ms"])
    assert cpu1["artifact"] == fastest["artifact"] and cpu1["speedup_vs_eager"] > 0
    assert "## Recommendation" in (built[0] / "report.md").read_text()


def test_int8_slower_than_fp32_is_said_plainly_and_only_when_it_clearly_is():
    from export_kit.report.record import Report

    def row(name, batch, p50, **kw):
        return BenchResult(name, name, "onnxruntime", "cpu", batch, p50_ms=p50, **kw).to_dict()

    report = Report(artifacts=[{"name": "onnx", "precision": "fp32"},
                               {"name": "int8-onnx", "precision": "int8", "details": {"int8_layers": [
                                   "ConvInteger:a", "MatMulInteger:b"]}}],
                    bench=[row("onnx", 32, 1.0), row("int8-onnx", 32, 3.0), row("onnx", 1, 1.0),
                           row("int8-onnx", 1, 0.5), row("onnx", 8, 1.0), row("int8-onnx", 8, 1.04),
                           row("onnx", 4, 1.0, p50_ci95_ms=[0.9, 1.1]),
                           row("int8-onnx", 4, 1.3, p50_ci95_ms=[1.05, 1.5]),
                           row("onnx", 16, 1.0), row("int8-onnx", 16, 2.0, noisy=True)])
    assert report.int8_slowdowns() == ["int8-onnx is 3.00x slower than onnx on onnxruntime/cpu at batch 32 "
                                       "(3.0000 vs 1.0000 ms p50; int8 ops: ConvInteger, MatMulInteger)"]


def _timed(artifact: str, batch: int, p50s: list[float]) -> dict:
    """A row as summarize() leaves it: per-process medians, their median, interval and noise flag."""
    from export_kit.benchmark.run import summarize
    from export_kit.benchmark.sampling import Sample

    samples = [Sample(p50=v, p90=v, p99=v, mean=v, min=v, calls=100) for v in p50s]
    return summarize(BenchResult(artifact, artifact, "onnxruntime", "cpu", batch), samples).to_dict()


def _ranked(bench: list[dict]):
    from export_kit.benchmark.run import _add_speedups
    from export_kit.report.record import Report
    from export_kit.results import VerifyResult

    rows = [BenchResult.from_dict(b) for b in bench]
    _add_speedups(rows)
    names = {r.artifact for r in rows}
    report = Report(verify=[VerifyResult(a, a, "onnxruntime", "cpu", "fp32").to_dict() for a in names],
                    bench=[r.to_dict() for r in rows])
    report.derive()
    return report


def test_a_noisy_row_is_ranked_by_its_interval_never_dropped_for_a_slower_one():
    from export_kit.report.verdict import verdict_lines

    noisy_fast = [0.050, 0.051, 0.052, 0.050, 0.065, 0.051, 0.050]  # one slow process: 29% spread, flagged
    slow = [0.080, 0.081, 0.080, 0.079, 0.095, 0.080, 0.081]
    report = _ranked([_timed("onnx", 1, noisy_fast), _timed("int8-static", 1, slow)])
    assert BenchResult.from_dict(report.bench[0]).noisy
    (pick,) = [p for p in report.recommendation if p["target"].startswith("CPU, batch 1")]
    assert pick["artifact"] == "onnx" and pick["tied_with"] == []
    assert verdict_lines(report)[0].startswith("CPU, batch 1 (latency): ship onnx (onnxruntime/cpu)")


def test_rows_whose_intervals_overlap_are_called_a_tie_with_the_processes_that_would_rank_them():
    from export_kit.report.verdict import verdict_lines

    onnx = [0.050, 0.058, 0.049, 0.061, 0.052, 0.047, 0.060]
    static = [0.052, 0.055, 0.051, 0.058, 0.054, 0.050, 0.057]
    report = _ranked([_timed("onnx", 1, onnx), _timed("int8-static", 1, static)])
    (pick,) = [p for p in report.recommendation if p["target"].startswith("CPU, batch 1")]
    assert pick["artifact"] == "onnx" and [t["artifact"] for t in pick["tied_with"]] == ["int8-static"]
    assert 7 < pick["processes_to_rank"] <= 100  # more than were run, within what a suggestion may name
    assert verdict_lines(report)[0] == ("CPU, batch 1 (latency): onnx and int8-static cannot be told apart (p50 "
                                        f"0.0520 / 0.0540 ms at batch 1): rerun bench with --processes "
                                        f"{pick['processes_to_rank']} to rank them")


def test_the_throughput_line_quotes_the_largest_batch_even_when_every_row_there_is_noisy():
    rows = [_timed("onnx", 1, [0.05] * 5), _timed("onnx", 32, [0.50, 0.51, 0.70, 0.50, 0.52]),
            _timed("int8-static", 32, [0.90, 0.92, 1.30, 0.91, 0.90])]
    report = _ranked(rows)
    assert all(BenchResult.from_dict(r).noisy for r in report.bench if r["batch"] == 32)
    (pick,) = [p for p in report.recommendation if "throughput" in p["target"]]
    assert pick["batch"] == 32 and pick["artifact"] == "onnx"


def test_a_speedup_over_a_noisy_eager_row_is_shown_with_its_interval():
    from export_kit.report.verdict import speedup_text

    eager = _timed("pytorch", 1, [0.40, 0.41, 0.80, 0.40, 0.42])
    eager["runtime"] = "eager"
    report = _ranked([eager, _timed("onnx", 1, [0.05, 0.051, 0.05, 0.052, 0.05])])
    (pick,) = [p for p in report.recommendation if p["target"].startswith("CPU, batch 1")]
    low, high = pick["speedup_ci95"]
    assert low <= pick["speedup_vs_eager"] <= high and high > low
    assert speedup_text(pick) == f"{pick['speedup_vs_eager']:.2f}x eager [{low:.2f}, {high:.2f}]"


def _recipe_commands(workflow: dict) -> list[tuple[str, list[str]]]:
    """Every exportkit call in the workflow's ``run:`` scripts, as (command, arguments), continuations joined."""
    import shlex

    calls = []
    for job in workflow["jobs"].values():
        for step in job["steps"]:
            script = step.get("run", "").replace("\\\n", " ")
            for line in script.splitlines():
                words = shlex.split(line, comments=True)
                if words and words[0].endswith("/exportkit"):
                    calls.append((words[1], words[2:]))
    return calls


def test_the_ci_recipe_parses_and_uses_only_options_the_cli_has():
    """The workflow cannot run here; it must at least be valid YAML whose exportkit calls all exist, with the
    permission its JUnit step needs and a job for a user's own model."""
    from pathlib import Path

    import yaml

    workflow = yaml.safe_load((Path(__file__).resolve().parents[1] / "examples" / "ci" / "exportkit.yml").read_text())
    assert workflow["permissions"]["checks"] == "write"
    calls = _recipe_commands(workflow)
    assert {c for c, _ in calls} == {"build", "verify", "bench"}
    assert any("--model" in args for c, args in calls if c == "build")
    helps = {c: invoke(c, "--help").output for c, _ in calls}
    for command, args in calls:
        for option in (a.split("=")[0] for a in args if a.startswith("--")):
            assert option in helps[command], (command, option)


def test_pairing_cancels_what_made_a_whole_process_slow():
    from export_kit.verification.stats import ratio_ci

    process_speed = [1.0, 1.6, 0.8, 2.0, 1.2, 0.9, 1.4]  # each worker process ran everything this much slower
    old = [0.05 * f for f in process_speed]
    new = [0.05 * 1.3 * f for f in process_speed]
    point, low, high = ratio_ci(new, old, paired=True)
    assert point == pytest.approx(1.3) and high - low < 1e-9
    _, low, high = ratio_ci(new, old, paired=False)
    assert low < 1.1 and high > 1.6  # unpaired, the same samples cannot rule out "no change"


@pytest.mark.parametrize("interval, verdict", [((1.3, 1.2, 1.4), "slower"), ((0.8, 0.7, 0.9), "faster"),
                                               ((1.0, 0.95, 1.05), "no change"), ((1.0, 0.8, 1.3), "too noisy")])
def test_latency_verdicts(interval, verdict):
    from export_kit.verification.stats import latency_verdict

    assert latency_verdict(*interval, 0.10, 7)[0] == verdict


def test_baselines_written_with_in_process_rounds_still_load():
    row = BenchResult.from_dict({"artifact": "onnx", "format": "onnx", "runtime": "onnxruntime", "device": "cpu",
                                 "batch": 1, "status": "ok", "p50_ms": 1.0, "round_p50_ms": [0.9, 1.0, 1.1]})
    assert row.process_p50_ms == [0.9, 1.0, 1.1] and row.passed
    from export_kit.results import GateResult

    old = GateResult.from_dict({"key": "k", "verdict": "regressed", "status": "failed"})
    assert old.verdict == "slower" and not old.passed


def test_worker_processes_time_every_row_and_report_its_samples(built):
    from export_kit.api import folder_spec
    from export_kit.benchmark.run import Bench, bench_folders
    from export_kit.benchmark.sampling import SamplingConfig
    from export_kit.folder.access import open_folder

    folder = open_folder(built[0], writes=False)[0]
    cfg = SamplingConfig(processes=2, passes=2, slice_s=0.01, slice_iters=3, warmup_s=0.01)
    rows = bench_folders([Bench(folder, folder_spec(folder, None))], [1], cfg, devices=("cpu",))[0]
    timed = [r for r in rows if r.status == "passed"]
    assert {r.artifact for r in timed} >= {"pytorch", "onnx", "torchscript", "int8-onnx"}
    for r in timed:
        assert len(r.process_p50_ms) == 2 and r.iterations >= 2 * 2 * 3 and r.p50_ms > 0
        low, high = r.p50_ci95_ms
        assert min(r.process_p50_ms) <= low <= r.p50_ms <= high <= max(r.process_p50_ms)


def test_a_planted_slowdown_keeps_outputs_and_passes_verify(built_copy):
    import numpy as np
    import onnxruntime as ort
    from slowdown import add_work

    from export_kit import api
    from export_kit.folder.signing import sign_folder

    golden = np.load(built_copy / "golden.npz")["input_0"][:16]
    before = ort.InferenceSession(str(built_copy / "model.onnx")).run(None, {"input": golden})[0]
    add_work(built_copy, width=512)
    after = ort.InferenceSession(str(built_copy / "model.onnx")).run(None, {"input": golden})[0]
    assert np.array_equal(before, after)
    sign_folder(built_copy)
    report = api.verify(built_copy, None, devices=("cpu",), log=lambda _: None)
    assert all(r.passed for r in report.verify_rows() if r.artifact == "onnx")


def test_ab_in_one_run_fails_a_slowed_copy_and_refuses_another_model(built, built_copy, tmp_path):
    from slowdown import add_work

    add_work(built_copy, width=32768)
    common = ["bench", "--batch", "1", "--device", "cpu", "--processes", "3"]
    result = invoke(*common, "--artifacts", built_copy, "--against", built[0], "--report-dir", tmp_path / "r")
    assert result.exit_code == 1 and "onnx/onnxruntime/cpu/batch1: latency regressed" in result.output
    gate = {g["key"]: g for g in json.loads((tmp_path / "r" / "report.json").read_text())["gate"]}
    assert gate["onnx/onnxruntime/cpu/batch1"]["verdict"] == "slower"
    assert gate["onnx/onnxruntime/cpu/batch1"]["ratio_ci95"][0] > 1.1
    manifest = json.loads((built_copy / "manifest.json").read_text())
    manifest["input"]["shape"] = manifest["inputs"][0]["shape"] = ["batch", 3, 16, 16]
    other = tmp_path / "other"
    other.mkdir()
    (other / "manifest.json").write_text(json.dumps(manifest))
    result = invoke(*common, "--artifacts", built_copy, "--against", other)
    assert result.exit_code == 2 and "holds another model" in result.output
    result = invoke(*common, "--artifacts", built_copy, "--against", built[0], "--baseline", tmp_path / "b.json")
    assert result.exit_code == 2 and "not both" in result.output


def _samples(p50s):
    from export_kit.benchmark.sampling import Sample

    return [Sample(p50=v, p90=v, p99=v, mean=v, min=v, calls=10) for v in p50s]


def test_tuning_keeps_the_defaults_unless_a_candidate_is_faster_beyond_noise():
    from export_kit.benchmark.run import summarize
    from export_kit.benchmark.tuning import choose

    default = [1.0, 1.2, 0.9, 1.1, 1.0]
    clearly = [0.8 * v for v in default]
    barely = [0.99, 1.25, 0.85, 1.12, 0.97]  # faster in some processes, slower in others
    row = _row(None, [])
    choose(row, [({}, _samples(default)), ({"threads": 2}, _samples(clearly)), ({"threads": 1}, _samples(barely))],
           summarize)
    assert row.tuned == {"threads": 2} and row.p50_ms == pytest.approx(0.8)
    assert [t["options"] for t in row.tuning] == [{}, {"threads": 2}, {"threads": 1}]
    row = _row(None, [])
    choose(row, [({}, _samples(default)), ({"threads": 1}, _samples(barely))], summarize)
    assert row.tuned == {} and row.p50_ms == pytest.approx(1.0)


@pytest.mark.slow
def test_bench_tune_records_settings_that_later_runs_and_verify_use(built_copy, tmp_path):
    from export_kit import api

    args = ["bench", "--artifacts", built_copy, "--batch", "1", "--device", "cpu", "--processes", "2"]
    result = invoke(*args, "--tune")
    assert result.exit_code == 0, result.output
    settings = json.loads((built_copy / "manifest.json").read_text())["runtime_settings"]
    assert set(settings) >= {"pytorch", "onnx", "torchscript"} and "onnxruntime/cpu/batch1" in settings["onnx"]
    bench = {r["artifact"]: r for r in json.loads((built_copy / "report.json").read_text())["bench"]
             if r["status"] == "passed"}
    for name, row in bench.items():
        chosen = next(t for t in row["tuning"] if t["options"] == row["tuned"])
        assert row["tuning"][0]["options"] == {} and (row["tuned"] == {} or chosen["vs_default"][2] < 1.0), name
    assert "Runtime settings chosen by measurement" in (built_copy / "report.md").read_text()
    assert invoke(*args).exit_code == 0
    later = {r["artifact"]: r for r in json.loads((built_copy / "report.json").read_text())["bench"]
             if r["status"] == "passed"}
    assert later["onnx"]["settings"]["options"] == settings["onnx"]["onnxruntime/cpu/batch1"]
    report = api.verify(built_copy, None, devices=("cpu",), log=lambda _: None)  # re-signed: still trusted
    assert all(r.passed and r.status == "passed" for r in report.verify_rows())


def test_env_freeze_pins_every_dependency_and_the_recipe_installs_with_those_pins():
    import re
    import tomllib
    from importlib import metadata
    from pathlib import Path

    root = Path(__file__).resolve().parents[1]
    declared = {re.match(r"[A-Za-z0-9._-]+", r).group(0)
                for r in tomllib.loads((root / "pyproject.toml").read_text())["project"]["dependencies"]}
    result = invoke("env", "--freeze")
    assert result.exit_code == 0
    pins = dict(line.split("==") for line in result.output.split())
    assert pins.keys() == declared
    assert all(metadata.version(name).split("+")[0] == version for name, version in pins.items())
    committed = [line for line in (root / "examples" / "ci" / "constraints.txt").read_text().splitlines()
                 if not line.startswith("#")]
    assert {line.split("==")[0] for line in committed} == declared
    recipe = (root / "examples" / "ci" / "exportkit.yml").read_text()
    installs = [line for line in recipe.splitlines() if "pip install" in line]
    assert len(installs) == 6 and all("pip install -c examples/ci/constraints.txt" in line for line in installs)
