"""verify as CI uses it: a copied folder with nothing else, JUnit output, tolerance files, and selftest."""

import itertools
import json
import os
import shutil
import subprocess
import sys
import xml.etree.ElementTree as ET

import pytest
from test_cli import invoke

from export_kit.errors import UsageError
from export_kit.verification.tolerances import load_tolerances

BLOCK_TRAIN = ("import sys; sys.modules['train'] = None; from export_kit.cli.app import main; "
               "sys.argv[0] = 'exportkit'; main()")


def test_a_copied_folder_verifies_offline_without_dataset_checkpoint_code_or_training_code(built, tmp_path):
    dst = tmp_path / "elsewhere"
    shutil.copytree(built[0], dst)
    env = {k: v for k, v in os.environ.items() if k != "EXPORTKIT_DATA"}
    done = subprocess.run([sys.executable, "-c", BLOCK_TRAIN, "verify", "--artifacts", str(dst)], env=env,
                          cwd=tmp_path, capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
    rows = json.loads((dst / "report.json").read_text())["verify"]
    eager = next(r for r in rows if r["artifact"] == "pytorch" and r["device"] == "cpu")
    assert eager["status"] == "skipped" and "not loadable" in eager["reason"]
    others = [r for r in rows if r["device"] == "cpu" and r["artifact"] != "pytorch"]
    assert len(others) == 5 and all(r["status"] == "passed" for r in others)


def test_junit_has_one_case_per_artifact_target_and_check(built_copy, tmp_path):
    path = tmp_path / "out.xml"
    manifest = json.loads((built_copy / "manifest.json").read_text())
    manifest["preprocessing"]["scale"] = 1.0
    (built_copy / "manifest.json").write_text(json.dumps(manifest))
    assert invoke("verify", "--artifacts", built_copy, "--junit", path).exit_code == 1
    suite = ET.parse(path).getroot()
    cases = suite.findall("testcase")
    names = {(c.get("classname"), c.get("name")) for c in cases}
    assert ("onnx.onnxruntime.cpu", "parity_batch32") in names
    failed = {(c.get("classname"), c.get("name")) for c in cases if c.find("failure") is not None}
    assert ("onnx.onnxruntime.cpu", "preprocessing") in failed
    assert int(suite.get("tests")) == len(cases) and int(suite.get("failures")) == len(failed)
    assert int(suite.get("skipped")) >= 1  # CUDA targets on this machine


def test_tolerance_file_overrides_per_precision_and_per_artifact(built_copy, tmp_path):
    toml = tmp_path / "tol.toml"
    toml.write_text("[fp32]\nmax_abs = 1e-12\n[torchscript]\nmax_abs = 1.0\n")
    result = invoke("verify", "--artifacts", built_copy, "--tolerances", toml)
    assert result.exit_code == 1
    rows = {(r["artifact"], r["device"]): r for r in json.loads((built_copy / "report.json").read_text())["verify"]}
    assert rows[("onnx", "cpu")]["status"] == "failed" and rows[("onnx", "cpu")]["tolerance"]["max_abs"] == 1e-12
    assert rows[("torchscript", "cpu")]["status"] == "passed"
    assert rows[("torchscript", "cpu")]["tolerance"]["max_abs"] == 1.0
    assert rows[("onnx", "cpu")]["min_passing"]["max_abs"] > 1e-12  # the bound that would have passed


@pytest.mark.parametrize("text, fragment", [("[int8]\nmax_ab = 1\n", "unknown key"), ("[int8\n", "not valid TOML"),
                                            ("max_abs = 1\n", "must be a table"), ("[fp32]\nmax_abs = -1\n",
                                                                                    "non-negative"),
                                            ("[fp32.outputs]\nmax_abs = 1\n", "one table per output"),
                                            ("[fp32.outputs.logits]\nmax_abz = 1\n", "unknown key")])
def test_bad_tolerance_files_are_usage_errors(tmp_path, text, fragment):
    path = tmp_path / "t.toml"
    path.write_text(text)
    with pytest.raises(UsageError, match=fragment):
        load_tolerances(path)


def test_accuracy_statistics_are_reported_and_recomputable(built, synthetic):
    """Accuracy, agreement, the Wilson interval and McNemar's p, recomputed here from the artifact's own
    predictions (onnxruntime run directly, the same batches) and the reference's."""
    import math

    import numpy as np
    import onnxruntime as ort

    from export_kit.folder.manifest import load_manifest

    rows = json.loads((built[0] / "report.json").read_text())["verify"]
    row = next(r for r in rows if r["artifact"] == "int8-onnx" and r["device"] == "cpu")
    prep = load_manifest(built[0]).preprocessing
    session = ort.InferenceSession(str(built[0] / "model.int8.onnx"), providers=["CPUExecutionProvider"])
    from export_kit.verification.checks.accuracy import ACCURACY_BATCHES

    x = prep.apply(synthetic.test.images)  # in verify's batches: dynamic int8 scales each batch by its own range
    starts = np.cumsum([0, *(ACCURACY_BATCHES * len(x))])
    preds = np.concatenate([session.run(None, {"input": x[a:b]})[0] for a, b in itertools.pairwise(starts)
                            if a < len(x)]).argmax(1)
    import torch

    from export_kit.model.spec import load_checkpoint

    model, _ = load_checkpoint(built[0] / "checkpoint.pt")  # verify's reference: recomputed from the checkpoint
    with torch.inference_mode():  # in verify's chunks of 256: a near-tie can flip with the batch size
        reference = np.concatenate([model(torch.from_numpy(x[i:i + 256])).argmax(1).numpy()
                                    for i in range(0, len(x), 256)])
    labels = synthetic.test.labels
    assert row["accuracy"] == (preds == labels).mean()
    assert row["top1_agreement"] == (preds == reference).mean()
    n, p = len(labels), (preds == labels).mean()
    centre = (p + 1.9599639845 ** 2 / (2 * n)) / (1 + 1.9599639845 ** 2 / n)
    assert (row["accuracy_ci95"][0] + row["accuracy_ci95"][1]) / 2 == pytest.approx(centre, rel=1e-9)
    b = int(((reference == labels) & (preds != labels)).sum())  # reference right, artifact wrong
    c = int(((reference != labels) & (preds == labels)).sum())
    tail = sum(math.comb(b + c, k) for k in range(min(b, c) + 1)) / 2 ** (b + c) if b + c else 0.5
    assert row["mcnemar"]["p_value"] == pytest.approx(min(1.0, 2 * tail), rel=1e-9)
    assert "McNemar" in (built[0] / "report.md").read_text()


def test_selftest_catches_every_fault_and_passes_the_control(built_copy):
    result = invoke("selftest", "--artifacts", built_copy, "--dataset", "synthetic")
    assert result.exit_code == 0, result.output
    from export_kit.faults.plant import FAULTS

    applies = [f for f in FAULTS if not f.needs_axes]  # the seed CNN has no dynamic axis besides the batch
    assert result.output.count("caught") == len(applies) and "no false alarm" in result.output


@pytest.fixture(scope="module")
def no_data_folder(tmp_path_factory):
    """A factory model built without data: no reference accuracy exists for any dataset."""
    out = tmp_path_factory.mktemp("nodata") / "artifacts"
    result = invoke("build", "--model", "byo_models:tiny", "--input-shape", "3x20x20", "--out", out,
                    "--formats", "onnx", "--golden", "16", "--no-bench")
    assert result.exit_code == 0, result.output
    return out


def test_data_from_the_environment_that_does_not_fit_skips_accuracy_and_runs_the_rest(no_data_folder, tmp_path,
                                                                                       monkeypatch):
    from conftest import write_image_folder

    data = tmp_path / "data"
    write_image_folder(data, ["a", "b", "c"], per_class=2, size=20)
    monkeypatch.setenv("EXPORTKIT_DATA", str(data))
    result = invoke("verify", "--artifacts", no_data_folder)
    assert result.exit_code == 0, result.output
    assert "accuracy skipped:" in result.output and "built without a test set" in result.output
    rows = json.loads((no_data_folder / "report.json").read_text())["verify"]
    onnx = next(r for r in rows if r["artifact"] == "onnx" and r["device"] == "cpu")
    assert onnx["status"] == "passed" and onnx["accuracy"] is None
    explicit = invoke("verify", "--artifacts", no_data_folder, "--data-dir", data)
    assert explicit.exit_code == 2 and "built without a test set" in explicit.output


def test_environment_images_of_another_shape_skip_accuracy_named_ones_are_refused(built_copy, tmp_path,
                                                                                   monkeypatch):
    from conftest import write_image_folder

    data = tmp_path / "data"
    write_image_folder(data, [f"c{i}" for i in range(10)], per_class=1, size=20)
    monkeypatch.setenv("EXPORTKIT_DATA", str(data))
    result = invoke("verify", "--artifacts", built_copy)
    assert result.exit_code == 0, result.output
    assert "accuracy skipped: the data's images are 3x20x20 but the model takes 3x32x32" in result.output
    explicit = invoke("verify", "--artifacts", built_copy, "--data-dir", data)
    assert explicit.exit_code == 2 and "3x20x20" in explicit.output


def test_data_of_mixed_sizes_is_refused_as_not_fitting_the_folder_not_as_a_build_mistake(built_copy, tmp_path,
                                                                                          monkeypatch):
    from conftest import write_image_folder

    data = tmp_path / "data"
    from PIL import Image

    write_image_folder(data, [f"c{i}" for i in range(10)], per_class=1, size=32)
    Image.new("RGB", (20, 20)).save(data / "test" / "c0" / "small.png")
    explicit = invoke("verify", "--artifacts", built_copy, "--data-dir", data)
    assert explicit.exit_code == 2, explicit.output
    assert "does not fit this folder, whose model was built without --resize" in explicit.output
    assert "2 different sizes (20x20, 32x32)" in explicit.output and "give build" not in explicit.output
    monkeypatch.setenv("EXPORTKIT_DATA", str(data))
    result = invoke("verify", "--artifacts", built_copy)
    assert result.exit_code == 0 and "accuracy skipped: $EXPORTKIT_DATA does not fit this folder: images of 2 " \
                                     "different sizes" in result.output
