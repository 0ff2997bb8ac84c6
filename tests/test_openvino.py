"""OpenVINO: the f32-pinned row is held to fp32's tolerance and meets it; the CPU plugin's default-precision row
is labelled bf16 and judged as such, never passed off as fp32; the weights file is hashed like the graph."""

import json
import shutil

import pytest
from conftest import build_folder
from test_cli import invoke

from export_kit.faults.plant import _edit_manifest

pytest.importorskip("openvino")


@pytest.fixture(scope="module")
def ov_folder(tmp_path_factory, checkpoint, synthetic):
    out = tmp_path_factory.mktemp("openvino") / "artifacts"
    report = build_folder(checkpoint, synthetic.test, out, formats=("onnx", "openvino"), bench_batches=(1, 4))
    return out, report


def _rows(verify: list[dict]) -> dict[str, dict]:
    return {r["artifact"]: r for r in verify if r["device"] == "cpu"}


def _verified(folder) -> dict[str, dict]:
    return _rows(json.loads((folder / "report.json").read_text())["verify"])


def test_the_pinned_row_meets_fp32_and_the_default_row_is_judged_as_bf16(ov_folder):
    import openvino as ov

    out, report = ov_folder
    rows = _rows(report.verify)
    manifest = json.loads((out / "manifest.json").read_text())
    precision = {a["name"]: a["precision"] for a in manifest["artifacts"]}
    assert precision["openvino"] == "fp32" and precision["openvino-default"] == "bf16"
    assert rows["openvino"]["status"] == "passed" and rows["openvino"]["max_abs_err"] <= 1e-4
    assert rows["openvino"]["tolerance"]["max_abs"] == 1e-4
    assert rows["openvino-default"]["status"] == "passed"
    assert rows["openvino-default"]["tolerance"]["max_abs"] is None
    assert rows["openvino-default"]["tolerance"]["min_cosine"] == 0.995
    plugin_default = str(ov.Core().get_property("CPU", "INFERENCE_PRECISION_HINT"))
    settings = {b["artifact"]: b["settings"] for b in report.bench if b["status"] == "passed"}
    assert settings["openvino"]["inference_precision"] == "<Type: 'float32'>"
    assert settings["openvino-default"]["inference_precision"] == plugin_default
    if "bfloat16" in plugin_default:  # on this CPU the default is not fp32: an fp32 bound would fail it
        assert rows["openvino-default"]["max_abs_err"] > 1e-4


def test_the_default_row_relabelled_fp32_fails_the_precision_check(ov_folder, tmp_path):
    copy = tmp_path / "artifacts"
    shutil.copytree(ov_folder[0], copy)
    _edit_manifest(copy, lambda d: next(a for a in d["artifacts"] if a["name"] == "openvino-default").update(
        precision="fp32"))
    result = invoke("verify", "--artifacts", copy, "--device", "cpu", "--no-explain")
    rows = _verified(copy)
    assert result.exit_code == 1
    assert "precision" in [c["name"] for c in rows["openvino-default"]["checks"] if not c["passed"]]


def test_changed_weights_fail_integrity_on_both_rows(ov_folder, tmp_path):
    copy = tmp_path / "artifacts"
    shutil.copytree(ov_folder[0], copy)
    weights = copy / "model.openvino.bin"
    data = bytearray(weights.read_bytes())
    data[len(data) // 2] ^= 0xFF
    weights.write_bytes(bytes(data))
    result = invoke("verify", "--artifacts", copy, "--device", "cpu", "--no-explain")
    assert result.exit_code == 1
    rows = _verified(copy)
    for name in ("openvino", "openvino-default"):
        assert rows[name]["status"] == "failed" and "model.openvino.bin sha256 differs" in rows[name]["reason"]
    assert rows["onnx"]["status"] == "passed"


def test_without_the_package_the_format_is_unavailable_not_a_crash(tmp_path, checkpoint, synthetic, monkeypatch):
    import importlib.util

    real = importlib.util.find_spec
    monkeypatch.setattr(importlib.util, "find_spec", lambda name, *a: None if name == "openvino" else real(name, *a))
    report = build_folder(checkpoint, synthetic.test, tmp_path / "a", formats=("onnx", "openvino"),
                          bench_batches=(), verify_after=False)
    (failure,) = report.export_failures
    assert failure["status"] == "unavailable" and "pip install 'exportkit[openvino]'" in failure["reason"]
    assert {a["name"] for a in report.artifacts} == {"pytorch", "onnx"}
