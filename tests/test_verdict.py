"""The verdict a report opens with and a command ends with: never PASS when nothing was checked."""

from export_kit.report.markdown import render
from export_kit.report.record import Report
from export_kit.report.verdict import overall, verdict_lines
from export_kit.results import BenchResult, Status, VerifyResult


def _verify(artifact, device="cpu", status=Status.PASSED, reason="", **kw):
    return VerifyResult(artifact, artifact, "onnxruntime", device, "fp32", status=status, reason=reason,
                        **kw).to_dict()


def test_a_report_in_which_nothing_was_checked_is_incomplete_never_pass():
    assert overall(Report()) == "INCOMPLETE"
    skipped = Report(verify=[_verify("onnx", "cuda", Status.SKIPPED, "no GPU")])
    assert overall(skipped) == "INCOMPLETE" and "Overall: **INCOMPLETE**" in render(skipped)
    assert overall(Report(verify=[_verify("onnx")])) == "PASS"
    failing = Report(verify=[_verify("onnx"), _verify("fp16", status=Status.FAILED, reason="x")])
    assert overall(failing) == "FAIL" and "failed, do not ship: fp16 on onnxruntime/cpu (failed)" in verdict_lines(
        failing)


def test_the_card_names_what_to_ship_and_collapses_absent_devices():
    report = Report(artifacts=[{"name": "pytorch", "precision": "fp32", "bytes": 300_000},
                               {"name": "onnx", "precision": "fp32", "bytes": 250_000}],
                    verify=[_verify("pytorch", accuracy=0.70, reference_accuracy=0.70),
                            _verify("onnx", accuracy=0.69, reference_accuracy=0.70),
                            _verify("onnx", "cuda", Status.SKIPPED, "no CUDA provider"),
                            _verify("pytorch", "cuda", Status.SKIPPED, "no GPU")],
                    bench=[BenchResult("pytorch", "eager", "onnxruntime", "cpu", 1, p50_ms=0.4,
                                       throughput_per_s=2_500).to_dict(),
                           BenchResult("onnx", "onnx", "onnxruntime", "cpu", 1, p50_ms=0.1, speedup_vs_eager=4.0,
                                       throughput_per_s=10_000).to_dict()])
    report.derive()
    lines = verdict_lines(report)
    assert lines[0] == ("CPU, batch 1 (latency): ship onnx (onnxruntime/cpu), p50 0.1000 ms at batch 1, "
                        "4.00x eager, accuracy 0.6900 (-1.00 pts vs PyTorch), 250 kB")
    assert lines[-1] == "not present here: cuda (no CUDA provider)"
    markdown = render(report)
    assert markdown.split("\n## ")[1].startswith("Verdict") and lines[0] in markdown.split("\n## ")[1]


def test_the_status_table_leaves_absent_devices_to_the_verdict_line():
    from export_kit.report.markdown import status_rows

    report = Report(artifacts=[{"name": "onnx"}, {"name": "fp16"}],
                    verify=[_verify("onnx"), _verify("onnx", "cuda", Status.SKIPPED, "no GPU"),
                            _verify("fp16", status=Status.FAILED, reason="parity_batch1: max abs error 0.2"),
                            _verify("fp16", "cuda", Status.SKIPPED, "no GPU")])
    why = {row[0]: row[-1] for row in status_rows(report)}
    assert why == {"onnx": "-", "fp16": "onnxruntime/cpu: parity_batch1: max abs error 0.2"}


def test_one_stray_p99_does_not_flatten_the_latency_panel():
    from export_kit.report.plots import CLIP_AT_P50, latency_figure

    rows = [BenchResult("onnx", "onnx", "onnxruntime", "cpu", 32, p50_ms=1.0, p90_ms=1.2, p99_ms=1.5),
            BenchResult("torchscript", "torchscript", "torchscript", "cpu", 32, p50_ms=2.0, p90_ms=99.97,
                        p99_ms=120.0, noisy=True)]
    fig = latency_figure(rows)
    ax = fig.axes[0]
    assert ax.get_xlim()[1] <= CLIP_AT_P50 * 2.0 * 1.05
    assert [t.get_text() for t in ax.texts] == ["p99 120 ms"]
    assert "torchscript (torchscript/cpu) NOISY" in [t.get_text() for t in ax.get_yticklabels()]


def test_the_verdict_is_the_first_section_of_report_html_too(tmp_path):
    import re

    from export_kit.report.html import render_html

    report = Report(verify=[_verify("onnx")])
    html = render_html(render(report), tmp_path)
    assert re.findall(r"<h2>(.*?)</h2>", html)[0] == "Verdict"
    assert html.index("Overall: <strong>PASS</strong>") < html.index("<h2>Status per artifact</h2>")


def test_a_build_stopped_before_verify_leaves_a_report_that_never_says_pass(tmp_path, checkpoint, synthetic):
    """The state a build killed during verify leaves: the export stage's report, with no verify row in it."""
    from conftest import build_folder

    build_folder(checkpoint, synthetic.test, tmp_path / "a", formats=("onnx",), verify_after=False,
                 bench_batches=())
    text = (tmp_path / "a" / "report.md").read_text()
    assert "Overall: **INCOMPLETE**" in text and "PASS" not in text


def test_the_glance_table_compares_formats_on_one_line_each():
    from export_kit.report.verdict import glance

    report = Report(artifacts=[{"name": "pytorch", "bytes": 250_000}, {"name": "onnx", "bytes": 266_000}],
                    verify=[_verify("pytorch", accuracy=0.70), _verify("onnx", accuracy=0.69),
                            _verify("onnx", "cuda", Status.SKIPPED, "no GPU")],
                    bench=[BenchResult("pytorch", "eager", "eager", "cpu", b, p50_ms=0.4 * b).to_dict()
                           for b in (1, 32)] +
                          [BenchResult("onnx", "onnx", "onnxruntime", "cpu", 1, p50_ms=0.1, speedup_vs_eager=4.0)
                           .to_dict()])
    header, rows = glance(report)
    assert header == ["artifact", "status", "size", "accuracy", "p50 ms, batch 1", "p50 ms, batch 32",
                      "vs eager, batch 1"]
    assert rows == [["pytorch", "passed", "250 kB", "0.7000", "0.4000", "12.8000", "-"],
                    ["onnx", "passed", "266 kB", "0.6900", "0.1000", "-", "4.00x"]]
    assert "### At a glance (CPU)" in render(report).split("\n## ")[1]


def test_rows_not_run_for_want_of_trust_make_the_verdict_not_trusted_never_pass():
    from export_kit.safeio.trust import UNTRUSTED

    report = Report(verify=[_verify("onnx"), _verify("torchscript", status=Status.SKIPPED,
                                                     reason=f"{UNTRUSTED} (the folder is not signed)")])
    assert overall(report) == "NOT TRUSTED" and "Overall: **NOT TRUSTED**" in render(report)


def test_the_gate_verdict_is_one_of_the_verdict_lines():
    from export_kit.results import GateResult

    report = Report(verify=[_verify("onnx")],
                    gate=[GateResult("onnx/cpu/batch1", "same").to_dict(),
                          GateResult("onnx/cpu/batch32", "slower", status=Status.FAILED,
                                     detail="new/baseline 1.4 [1.3, 1.5]").to_dict()])
    line = next(x for x in verdict_lines(report) if x.startswith("latency gate"))
    assert line == ("latency gate: 1 of 2 rows pass (1 same, 1 slower); regressed: onnx/cpu/batch32 "
                    "(new/baseline 1.4 [1.3, 1.5])")


def test_the_reference_accuracy_is_the_eager_rows_when_the_model_came_without_one():
    report = Report(model={"factory": "pkg:fn"}, verify=[_verify("pytorch", accuracy=0.2857)])
    assert "reference test accuracy 0.2857" in render(report)
    report.model["test_accuracy"] = 0.5
    assert "reference test accuracy 0.5000" in render(report)


def test_a_run_whose_last_epoch_fell_well_below_its_best_warns():
    from export_kit.pipeline import training_warnings

    fell = [{"epoch": 1, "test_accuracy": 0.3}, {"epoch": 2, "test_accuracy": 0.547},
            {"epoch": 3, "test_accuracy": 0.219}]
    assert training_warnings(fell) == ["test accuracy fell from 0.5470 (epoch 2) to 0.2190 (epoch 3); the last "
                                       "epoch's weights are the ones exported: check the learning rate or the "
                                       "number of epochs"]
    assert training_warnings([*fell[:2], {"epoch": 3, "test_accuracy": 0.52}]) == []
    assert training_warnings([{"epoch": 1, "seconds": 3}]) == []
