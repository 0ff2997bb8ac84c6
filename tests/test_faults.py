"""Planted faults: verify must fail on each and name the check; a correct folder must never raise an alarm."""

import pytest
from conftest import build_folder

from export_kit import api
from export_kit.faults.plant import FAULTS, run_control, run_fault
from export_kit.folder.access import open_folder


@pytest.fixture
def source(built):
    """The shared build as selftest opens it: with the trust its signature earns (built on this machine)."""
    folder, _ = open_folder(built[0], writes=False)
    assert folder.trust.signed_digests
    return folder


@pytest.fixture(scope="module")
def axes_source(tmp_path_factory):
    """A text model with a dynamic length (``seq``), built and opened as selftest opens it."""
    from test_cli import invoke

    out = tmp_path_factory.mktemp("axes") / "artifacts"
    result = invoke("build", "--model", "byo_models:text", "--input", "ids:int64:batchxseq=32:0..1000", "--formats",
                    "onnx", "--golden", "16", "--no-bench", "--out", out)
    assert result.exit_code == 0, result.output
    return open_folder(out, writes=False)[0]


@pytest.mark.parametrize("fault", FAULTS, ids=[f.name for f in FAULTS])
def test_each_planted_fault_is_caught_with_its_check(source, synthetic, fault, request):
    if fault.needs_axes:  # the seed CNN has none: this fault is planted in a model with a dynamic length
        source = request.getfixturevalue("axes_source")
    result = run_fault(source, fault, None if fault.needs_axes else synthetic.test)
    assert result.outcome == "caught" and result.passed, result
    assert set(fault.expect) <= set(result.failed_checks)


def test_every_registered_check_has_a_planted_fault_it_must_catch():
    from export_kit.verification.checks import CHECKS

    assert set(CHECKS) == {name for fault in FAULTS for name in fault.expect}


def test_the_shared_build_is_an_untouched_control(source, synthetic):
    assert run_control(source, synthetic.test).outcome == "no false alarm"


def test_a_fault_that_needs_data_is_skipped_not_passed_without_it(source):
    needs = next(f for f in FAULTS if f.needs_data)
    assert run_fault(source, needs, None).status == "skipped"


def test_faults_touch_only_a_copy(built, source):
    before = {p.name: p.read_bytes() for p in built[0].iterdir() if p.is_file() and not p.name.startswith("report")}
    run_fault(source, FAULTS[0], None)
    after = {p.name: p.read_bytes() for p in built[0].iterdir() if p.is_file() and not p.name.startswith("report")}
    assert before == after


@pytest.mark.parametrize("seed", range(5))
def test_no_false_alarm_on_rebuilt_folders_with_different_seeds(tmp_path, synthetic, seed):
    """Negative control, five times: a correct model trained and exported with another seed must pass."""
    from export_kit.model.datasets import Dataset
    from train.loop import TrainConfig, train

    small = Dataset(synthetic.train.subset(100), synthetic.test, synthetic.classes, synthetic.provenance)
    ckpt = tmp_path / "c.pt"
    train(small, TrainConfig(epochs=1, seed=seed), ckpt, progress=False)
    report = build_folder(ckpt, synthetic.test, tmp_path / "a", formats=("onnx", "torchscript", "int8"),
                          bench_batches=())
    assert report.passed, report.failures()
    assert api.verify(tmp_path / "a", synthetic.test, log=lambda _: None).passed


def test_the_verify_guide_lists_every_registered_check():
    from pathlib import Path

    from export_kit.verification.checks import CHECKS

    readme = (Path(__file__).resolve().parents[1] / "docs" / "verify.md").read_text()
    for name, spec in CHECKS.items():
        assert f"| `{name}` |" in readme and spec.summary in readme, name


def test_the_length_fault_is_skipped_with_its_reason_on_a_model_without_dynamic_axes(source):
    fault = next(f for f in FAULTS if f.needs_axes)
    result = run_fault(source, fault, None)
    assert result.status == "skipped" and "no dynamic axis" in result.detail


def test_a_failed_blocking_check_ends_the_artifacts_checks_before_anything_reads_the_file(built_copy):
    """A rewritten ONNX file fails integrity, a blocking check: none of the later file checks (precision, the
    graph's own) runs on bytes nobody vouches for, and the row never loads it."""
    path = built_copy / "model.onnx"
    path.write_bytes(path.read_bytes() + b"\0")
    report = api.verify(built_copy, explain=False, log=lambda _: 0)
    row = next(r for r in report.verify_rows() if r.artifact == "onnx" and r.device == "cpu")
    names = [c["name"] for c in row.checks]
    assert "integrity" in names and row.status == "failed"
    assert not {"precision", "self_contained", "graph", "load"} & set(names[names.index("integrity"):]), names
