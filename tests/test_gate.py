"""The latency gate: noise-aware, refuses apples-to-oranges comparisons, and fails CI only on real slowdowns."""

import json

import pytest
from test_cli import invoke

from export_kit.baseline import compare, parse_fraction, save_baseline
from export_kit.errors import UsageError
from export_kit.results import BenchResult

ENV = {"cpu": "X", "cpu_cores": 2, "machine": "x86_64", "torch": "2", "onnxruntime": "1", "onnx": "1",
       "torch_threads": 2, "cuda": None}


def _row(p50, rounds, batch=1):
    return BenchResult("onnx", "onnx", "onnxruntime", "cpu", batch, p50_ms=p50, round_p50_ms=rounds,
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
    assert _gate(tmp_path, base, [_row(1.3, [1.28, 1.3, 1.33])])[0].verdict == "regressed"


def test_a_baseline_30_percent_faster_fails(tmp_path):
    current = [_row(1.0, [0.97, 1.0, 1.03])]
    faster = [_row(0.7, [0.68, 0.7, 0.72])]
    result = _gate(tmp_path, faster, current)
    assert result[0].verdict == "regressed" and not result[0].passed and "+42.9%" in result[0].detail


def test_a_slowdown_inside_the_measured_noise_does_not(tmp_path):
    base = [_row(1.0, [0.9, 1.0, 1.15])]
    assert _gate(tmp_path, base, [_row(1.2, [1.2, 1.2, 1.3])])[0].verdict == "no change"


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


def test_cli_gate_against_itself_a_faster_baseline_and_another_machine(built_copy, tmp_path):
    base = tmp_path / "base.json"
    common = ["bench", "--artifacts", built_copy, "--batch", "1", "--device", "cpu"]
    assert invoke(*common, "--save-baseline", base).exit_code == 0
    data = json.loads(base.read_text())
    assert data["rows"] and all(len(r["round_p50_ms"]) == 3 for r in data["rows"])
    for row in data["rows"]:  # a baseline 3x faster than anything this machine can do
        row["p50_ms"] /= 3
        row["round_p50_ms"] = [v / 3 for v in row["round_p50_ms"]]
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


def test_int8_slower_than_fp32_is_said_plainly():
    from export_kit.report import Report

    report = Report(artifacts=[{"name": "onnx", "precision": "fp32"},
                               {"name": "int8-onnx", "precision": "int8", "details": {"int8_layers": [
                                   "ConvInteger:a", "MatMulInteger:b"]}}],
                    bench=[BenchResult("onnx", "onnx", "onnxruntime", "cpu", 32, p50_ms=1.0).to_dict(),
                           BenchResult("int8-onnx", "int8", "onnxruntime", "cpu", 32, p50_ms=3.0).to_dict(),
                           BenchResult("onnx", "onnx", "onnxruntime", "cpu", 1, p50_ms=1.0).to_dict(),
                           BenchResult("int8-onnx", "int8", "onnxruntime", "cpu", 1, p50_ms=0.5).to_dict()])
    assert report.int8_slowdowns() == ["int8-onnx is 3.0x slower than onnx on onnxruntime/cpu at batch 32 "
                                       "(3.0000 vs 1.0000 ms p50; int8 ops: ConvInteger, MatMulInteger)"]


def test_the_ci_recipe_uses_only_options_the_cli_has():
    """The workflow cannot run here; at least every exportkit option it passes must exist."""
    import re
    from pathlib import Path

    recipe = (Path(__file__).resolve().parents[1] / "examples" / "ci" / "exportkit.yml").read_text()
    calls = re.findall(r"exportkit (build|verify|bench)((?:\\\n|[^\n])*)", recipe)
    assert {c for c, _ in calls} == {"build", "verify", "bench"}
    for command, args in calls:
        help_text = invoke(command, "--help").output
        for option in re.findall(r"(--[a-z-]+)", args):
            assert option in help_text, (command, option)
