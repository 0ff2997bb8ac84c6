"""LiteRT: float32 and full-int8 .tflite programs built by litert-torch, verified and benched through the LiteRT
interpreter like every other format; without the packages, both formats say they are unavailable."""

import json

import pytest
from conftest import build_folder

pytest.importorskip("litert_torch")


@pytest.fixture(scope="module")
def lite(tmp_path_factory, checkpoint, synthetic):
    out = tmp_path_factory.mktemp("litert") / "artifacts"
    report = build_folder(checkpoint, synthetic.test, out, formats=("onnx", "litert", "litert-int8"),
                          calibration=synthetic.train.subset(30), bench_batches=(1, 4))
    return out, report


def test_float_litert_matches_fp32_and_int8_takes_int8_tensors(lite):
    out, report = lite
    rows = {r["artifact"]: r for r in report.verify if r["device"] == "cpu"}
    assert rows["litert"]["status"] == "passed" and rows["litert"]["max_abs_err"] <= 1e-4
    int8 = rows["litert-int8"]
    assert int8["tolerance"]["max_abs"] is None and int8["top1_agreement"] > 0.85  # judged as int8, and close
    assert int8["accuracy"] is not None
    manifest = json.loads((out / "manifest.json").read_text())
    arts = {a["name"]: a for a in manifest["artifacts"]}
    assert arts["litert-int8"]["precision"] == "int8" and arts["litert-int8"]["details"]["calibration_images"] == 300
    assert (out / "model.tflite").read_bytes()[4:8] == b"TFL3"  # the TFLite flatbuffer identifier
    settings = {b["artifact"]: b["settings"] for b in report.bench if b["status"] == "passed" and b["batch"] == 4}
    assert settings["litert-int8"]["io"] == "int8" and settings["litert"]["io"] == "float32"
    assert arts["litert"]["bytes"] > 3 * arts["litert-int8"]["bytes"]  # int8 weights take a quarter of the room


def test_without_the_packages_both_formats_are_unavailable(tmp_path, checkpoint, synthetic, monkeypatch):
    import importlib.util

    real = importlib.util.find_spec
    missing = {"litert_torch", "ai_edge_litert"}
    monkeypatch.setattr(importlib.util, "find_spec", lambda name, *a: None if name in missing else real(name, *a))
    report = build_folder(checkpoint, synthetic.test, tmp_path / "a", formats=("onnx", "litert", "litert-int8"),
                          calibration=synthetic.train.subset(3), bench_batches=(), verify_after=False)
    assert {f["format"]: f["status"] for f in report.export_failures} == {"litert": "unavailable",
                                                                          "litert-int8": "unavailable"}
    assert all("pip install 'exportkit[litert]'" in f["reason"] for f in report.export_failures)
