"""Models without class logits (segmentation, detection heads, embeddings): verified by parity alone on every
output, in every format that takes them and in the C++ and JavaScript consumers; the classifier, when a model has
several outputs and none is named, is the one called ``logits`` and the guess is printed."""

import json
import subprocess

import numpy as np
import pytest
from test_cli import invoke
from test_consumers import JS, _node, _ppm

FORMATS = "onnx,torchscript,int8,int8-static,fp16,export"
MODELS = {"segmenter": ["--classifier", "none"], "detector": []}  # the detector's none is guessed


@pytest.fixture(scope="module")
def dense(tmp_path_factory):
    """One CLI build per dense model (synthetic images for golden vectors and calibration, a short bench)."""
    built = {}
    for name, args in MODELS.items():
        out = tmp_path_factory.mktemp(name) / "artifacts"
        result = invoke("build", "--model", f"byo_models:{name}", "--input-shape", "3x32x32", *args,
                        "--dataset", "synthetic", "--formats", FORMATS, "--out", out, "--golden", "40",
                        "--batch", "1,8", "--bench-processes", "0")
        built[name] = out, result
    return built


@pytest.mark.slow
@pytest.mark.parametrize("name", sorted(MODELS))
def test_a_dense_model_builds_verifies_by_parity_and_benches_in_every_format(dense, name):
    out, result = dense[name]
    assert result.exit_code == 0, result.output
    assert "accuracy skipped: the model has no classifier output" in result.output
    if name == "detector":
        assert "no (batch, classes) output among ['logits']: every output is verified by parity alone" in result.output
    manifest = json.loads((out / "manifest.json").read_text())
    assert manifest["classes"] == [] and not any(o["classifier"] for o in manifest["outputs"])
    shape = {"segmenter": ["batch", 4, 32, 32], "detector": ["batch", 84, 84]}[name]
    assert manifest["output"]["shape"] == shape and manifest["golden"]["plain"]["outputs"] == ["golden_output_0.npy"]
    report = json.loads((out / "report.json").read_text())
    rows = {r["artifact"]: r for r in report["verify"] if r["device"] == "cpu"}
    assert set(rows) == {"pytorch", "onnx", "torchscript", "int8-onnx", "int8-torchscript", "int8-static", "fp16",
                         "export"}
    for artifact, row in rows.items():
        assert row["status"] == "passed" and row["accuracy"] is None and row["top1_agreement"] is None, artifact
        assert {"parity_batch1", "parity_batch32", "parity_batches"} <= {c["name"] for c in row["checks"]}
    timed = {(b["artifact"], b["batch"]) for b in report["bench"] if b["status"] == "passed"}
    assert {(a, b) for a in rows for b in (1, 8)} <= timed


@pytest.mark.slow
def test_parity_alone_still_fails_a_wrong_output(dense, tmp_path):
    """No classifier means no top-1 check, not no check: a dense output moved by 1% fails the fp32 bound."""
    import shutil

    from onnx import numpy_helper

    from export_kit.faults.onnx import _replace, edit_onnx

    folder = tmp_path / "seg"
    shutil.copytree(dense["segmenter"][0], folder)

    def edit(proto):
        last = proto.graph.initializer[-1]
        _replace(proto, last, numpy_helper.to_array(last) * 1.01 + 0.01)

    edit_onnx(folder, "onnx", edit)
    result = invoke("verify", "--artifacts", folder, "--device", "cpu", "--trust-code", "--allow-factory",
                    "byo_models:segmenter")
    assert result.exit_code == 1
    row = next(r for r in json.loads((folder / "report.json").read_text())["verify"]
               if r["artifact"] == "onnx" and r["device"] == "cpu")
    assert row["status"] == "failed" and "max abs error" in row["reason"]


def test_an_output_named_logits_is_the_classifier_and_the_guess_is_printed(tmp_path):
    result = invoke("build", "--model", "byo_models:embed_then_logits", "--input-shape", "3x16x16", "--formats",
                    "onnx", "--out", tmp_path / "f", "--golden", "8", "--no-bench")
    assert result.exit_code == 0, result.output
    assert "classifier: output 'logits' of ['embedding', 'logits'] (guessed" in result.output
    manifest = json.loads((tmp_path / "f" / "manifest.json").read_text())
    assert len(manifest["classes"]) == 5 and manifest["output"]["name"] == "logits"
    result = invoke("build", "--model", "byo_models:embed_then_logits", "--input-shape", "3x16x16", "--formats",
                    "onnx", "--out", tmp_path / "g", "--classifier", "embedding-typo", "--no-bench")
    assert result.exit_code == 2 and "--classifier none" in result.output


def _consumer_checks(program: list[str], dense, tmp_path) -> None:
    for name in MODELS:
        done = subprocess.run([*program, str(dense[name][0]), "--check"], capture_output=True, text=True,
                              timeout=120)
        assert done.returncode == 0, done.stdout + done.stderr
        assert done.stdout.startswith("PASS: 40 golden images") and "no classifier: parity alone" in done.stdout
    image = _ppm(tmp_path / "x.ppm", np.zeros((32, 32, 3), np.uint8))
    done = subprocess.run([*program, str(dense["segmenter"][0]), str(image)], capture_output=True, text=True,
                          timeout=120)
    assert done.returncode == 3 and "no classifier output" in done.stderr, done.stdout + done.stderr


@pytest.mark.slow
def test_the_js_consumer_checks_a_dense_model_by_parity(dense, tmp_path):
    _consumer_checks([_node(), str(JS / "classify.mjs")], dense, tmp_path)


@pytest.mark.slow
def test_the_cpp_consumer_checks_a_dense_model_by_parity(dense, classify, tmp_path):
    _consumer_checks([str(classify), "--artifact", "torchscript"], dense, tmp_path)


@pytest.mark.slow
def test_selftest_plants_every_fault_a_dense_model_can_have_and_catches_each(dense):
    result = invoke("selftest", "--artifacts", dense["segmenter"][0], "--allow-factory", "byo_models:segmenter")
    assert result.exit_code == 0, result.output
    assert "missed" not in result.output and result.output.count("caught") >= 9
    from export_kit.faults.plant import FAULTS, run_fault
    from export_kit.folder.access import open_folder

    source, _ = open_folder(dense["segmenter"][0], writes=False)
    for fault in (f for f in FAULTS if f.needs_classifier):
        skipped = run_fault(source, fault, None)
        assert skipped.outcome == "skipped" and "no classifier output" in skipped.detail, fault.name
