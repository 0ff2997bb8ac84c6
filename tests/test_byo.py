"""Bring your own model: torchvision architectures and user factories through `exportkit build --model`."""

import json

import pytest
import torch
from conftest import FAST_BENCH
from test_cli import invoke

import export_kit
from export_kit.benchmark.sampling import SamplingConfig


def _rows(out):
    report = json.loads((out / "report.json").read_text())
    return report, {r["artifact"]: r for r in report["verify"] if r["device"] == "cpu"}


@pytest.mark.slow
@pytest.mark.parametrize("arch", ["resnet18", "mobilenet_v3_small", "efficientnet_b0", "squeezenet1_1"])
def test_torchvision_architectures_build_verify_and_bench(tmp_path, arch):
    """BatchNorm, residual adds, depthwise convs, hardswish, SE blocks, adaptive pooling, dropout in eval. Their
    adaptive pooling takes any size, so they run at 96x96: the graphs of 224x224, a fifth of the arithmetic."""
    size = 96
    out = tmp_path / arch
    result = invoke("build", "--model", f"torchvision.models:{arch}", "--input-shape", f"3x{size}x{size}", "--out", out,
                    "--golden", "40", "--batch", "1", "--bench-processes", "0", "--mean", "0.485,0.456,0.406",
                    "--std", "0.229,0.224,0.225")
    report, rows = _rows(out)
    for name in ("pytorch", "onnx", "torchscript"):
        assert rows[name]["status"] == "passed", (name, rows[name]["reason"])
    for name in ("int8-onnx", "int8-torchscript"):  # random weights: int8 may fail, but only with a named check
        assert rows[name]["status"] == "passed" or rows[name]["reason"]
    assert result.exit_code == (1 if any(r["status"] == "failed" for r in report["verify"]) else 0)
    timed = {b["artifact"] for b in report["bench"] if b["status"] == "passed"}
    assert {"pytorch", "onnx", "torchscript"} <= timed
    manifest = json.loads((out / "manifest.json").read_text())
    assert manifest["input"]["shape"] == ["batch", 3, size, size] and len(manifest["classes"]) == 1000
    assert manifest["preprocessing"]["mean"] == [0.485, 0.456, 0.406]


def test_a_format_the_model_cannot_take_fails_alone_with_the_exporters_reason(tmp_path):
    out = tmp_path / "dd"
    result = invoke("build", "--model", "byo_models:data_dependent", "--input-shape", "3x16x16", "--out", out,
                    "--golden", "16", "--no-bench")
    assert result.exit_code == 1
    report, rows = _rows(out)
    failed = {f["format"]: f["reason"] for f in report["export_failures"]}
    assert "torch.onnx.export failed" in failed["onnx"] and "torch.export" in failed["onnx"]
    assert "\x1b" not in failed["onnx"]  # the exporter's colour codes do not reach the report
    # TorchScript traced one branch; the seeded golden inputs take the other, and parity says so
    assert rows["torchscript"]["status"] == "failed" and "parity_batch1" in rows["torchscript"]["reason"]
    assert "onnx: export failed" in result.output


def test_weights_classes_and_bad_factory_inputs(tmp_path):
    torch.manual_seed(1)
    weights = tmp_path / "w.pt"
    model = __import__("byo_models").tiny()
    torch.save(model.state_dict(), weights)
    classes = tmp_path / "classes.txt"
    classes.write_text("cat\ndog\nbird\n")
    out = tmp_path / "t"
    result = invoke("build", "--model", "byo_models:tiny", "--checkpoint", weights, "--classes", classes,
                    "--input-shape", "3x20x20", "--out", out, "--golden", "16", "--no-bench")
    assert result.exit_code == 0, result.output
    assert json.loads((out / "manifest.json").read_text())["classes"] == ["cat", "dog", "bird"]
    onnx = next(r for r in json.loads((out / "report.json").read_text())["verify"] if r["artifact"] == "onnx")
    batched = next(c for c in onnx["checks"] if c["name"] == "parity_batch32")
    assert batched["passed"] and batched["observed"]["samples"] == 32  # 16 golden images, repeated to a full batch
    for args, code, fragment in [
        (["--model", "byo_models:not_a_module"], 2, "not a torch.nn.Module"),
        (["--model", "byo_models:nope"], 2, "no callable 'nope'"),
        (["--model", "byo_models:tiny", "--input-shape", "2x20x20"], 2, "3 channels (RGB) or 1 (grayscale)"),
        (["--model", "byo_models:tiny", "--input-shape", "1x20x20"], 2, "example of shape(s) [(1, 1, 20, 20)]"),
        (["--model", "byo_models:tiny", "--input-shape", "3x20"], 2, "CxHxW"),
        (["--model", "byo_models:tiny", "--mean", "0.5,0.5"], 2, "or 3 comma-separated (one per channel)"),
        (["--model", "byo_models:tiny", "--classes", tmp_path / "w.pt"], 2, "cannot be read"),
        (["--model", "torchvision.models:resnet18", "--checkpoint", weights], 3, "does not fit the model"),
    ]:
        result = invoke("build", *args, "--out", tmp_path / "bad", "--golden", "16", "--no-bench",
                        *([] if "--input-shape" in args else ["--input-shape", "3x20x20"]))
        assert result.exit_code == code, (args, result.output)
        assert fragment in result.output


def test_python_api_builds_a_module_in_memory(tmp_path):
    model = __import__("byo_models").tiny()
    report = export_kit.build(model, torch.zeros(1, 3, 24, 24), formats="onnx,torchscript", out=tmp_path / "api",
                              golden_count=16, bench_batches=(1,), bench_config=SamplingConfig(**FAST_BENCH),
                              log=lambda _: None)
    assert report.passed, report.failures()
    assert {r.artifact for r in report.verify_rows()} == {"onnx", "torchscript"}
    assert json.loads((tmp_path / "api" / "manifest.json").read_text())["classes"] == ["class0", "class1", "class2"]


@pytest.mark.slow
def test_the_python_api_example_runs(tmp_path):
    import subprocess
    import sys
    from pathlib import Path

    script = Path(__file__).resolve().parents[1] / "examples" / "python_api.py"
    done = subprocess.run([sys.executable, str(script), str(tmp_path / "ex")], capture_output=True, text=True)
    assert done.returncode == 0, done.stdout + done.stderr
    assert "PASS" in done.stdout and (tmp_path / "ex" / "manifest.json").is_file()


def test_a_model_module_in_the_current_folder_is_found_as_python_would(tmp_path, monkeypatch):
    (tmp_path / "my_own_net.py").write_text(
        "import torch\n\n\ndef make():\n"
        "    return torch.nn.Sequential(torch.nn.Flatten(), torch.nn.Linear(3 * 8 * 8, 4))\n")
    monkeypatch.chdir(tmp_path)
    result = invoke("build", "--model", "my_own_net:make", "--input-shape", "3x8x8", "--out", tmp_path / "o",
                    "--golden", "16", "--formats", "onnx", "--no-bench")
    assert result.exit_code == 0, result.output
    result = invoke("build", "--model", "not_here_either:make", "--input-shape", "3x8x8", "--out", tmp_path / "p")
    assert result.exit_code == 2 and "current folder" in result.output and "PYTHONPATH" in result.output


def test_a_model_whose_outputs_do_not_match_the_data_classes_is_refused_before_export(tmp_path, checkpoint):
    out = tmp_path / "o"
    result = invoke("build", "--model", "byo_models:tiny", "--input-shape", "3x32x32", "--out", out,
                    "--dataset", "synthetic", "--no-bench")
    assert result.exit_code == 2 and "gives 3 outputs but the data has 10 classes" in result.output
    assert not (out / "manifest.json").exists() and not list(out.glob("model.*"))


def test_a_checkpoint_for_other_classes_than_the_data_is_refused(tmp_path, checkpoint):
    from conftest import write_image_folder

    write_image_folder(tmp_path / "d", ["left", "middle", "right"], per_class=4)
    result = invoke("build", "--checkpoint", checkpoint, "--data-dir", tmp_path / "d", "--out", tmp_path / "o",
                    "--no-bench")
    assert result.exit_code == 2
    assert "gives 10 outputs but the data has 3 classes (left, middle, right)" in result.output
    assert not (tmp_path / "o" / "manifest.json").exists()


def test_own_data_names_the_classes_and_a_disagreeing_shape_or_class_list_is_refused(tmp_path):
    from conftest import write_image_folder

    write_image_folder(tmp_path / "d", ["left", "middle", "right"], per_class=4, size=20)
    common = ["build", "--model", "byo_models:tiny", "--data-dir", tmp_path / "d", "--golden", "16", "--no-bench",
              "--formats", "onnx"]
    result = invoke(*common, "--input-shape", "3x20x20", "--out", tmp_path / "ok")
    assert result.exit_code == 0, result.output
    assert json.loads((tmp_path / "ok" / "manifest.json").read_text())["classes"] == ["left", "middle", "right"]
    result = invoke(*common, "--input-shape", "3x24x24", "--out", tmp_path / "shape")
    assert result.exit_code == 2 and "the data's images are 3x20x20 but the model takes 3x24x24" in result.output
    assert "--input-shape 3x20x20" in result.output and not (tmp_path / "shape").exists()
    names = tmp_path / "names.txt"
    names.write_text("right\nleft\nmiddle\n")
    result = invoke(*common, "--input-shape", "3x20x20", "--classes", names, "--out", tmp_path / "order")
    assert result.exit_code == 2 and "['right', 'left', 'middle']" in result.output
    assert "['left', 'middle', 'right']" in result.output and not (tmp_path / "order" / "manifest.json").exists()


def test_a_grayscale_model_builds_and_verifies_with_accuracy_from_rgb_images(tmp_path):
    """RGB JPEG-like folders feed a 1-channel model through the recorded conversion; golden pixels are stored
    converted, and accuracy is measured per format."""
    import numpy as np
    from conftest import write_image_folder

    data = tmp_path / "data"
    write_image_folder(data, ["a", "b", "c"], per_class=12, size=20)
    out = tmp_path / "gray"
    result = invoke("build", "--model", "byo_models:gray", "--input-shape", "1x20x20", "--mean", "0.5", "--std",
                    "0.25", "--data-dir", data, "--out", out, "--golden", "12", "--batch", "1,3",
                    "--bench-processes", "0")
    report, rows = _rows(out)
    timed = {(b["artifact"], b["batch"]) for b in report["bench"] if b["status"] == "passed"}
    assert {(a, b) for a in ("pytorch", "onnx", "torchscript") for b in (1, 3)} <= timed
    manifest = json.loads((out / "manifest.json").read_text())
    assert manifest["preprocessing"]["color"] == "L" and manifest["preprocessing"]["mean"] == [0.5]
    assert manifest["input"]["shape"] == ["batch", 1, 20, 20]
    assert np.load(out / "golden_pixels.npy").shape == (12, 20, 20, 1)
    for name in ("pytorch", "onnx", "torchscript"):
        assert rows[name]["status"] == "passed", (name, rows[name]["reason"])
        assert rows[name]["accuracy"] is not None
    assert result.exit_code == (1 if any(r["status"] == "failed" for r in report["verify"]) else 0), result.output
    assert invoke("verify", "--artifacts", out, "--data-dir", data).exit_code == result.exit_code


def test_the_newer_formats_fail_alone_with_their_exporters_reason_on_a_model_torch_export_refuses(tmp_path):
    out = tmp_path / "dd"
    result = invoke("build", "--model", "byo_models:data_dependent", "--input-shape", "3x16x16", "--out", out,
                    "--golden", "16", "--no-bench", "--formats", "torchscript,aoti,litert,openvino")
    assert result.exit_code == 1
    report, _ = _rows(out)
    failed = {f["format"]: f["reason"] for f in report["export_failures"]}
    assert "torch.export.export failed" in failed["aoti"]
    assert "litert-torch conversion failed" in failed["litert"]
    assert "torch.onnx.export failed" in failed["openvino"]  # OpenVINO converts the fp32 ONNX file
    assert {a["name"] for a in report["artifacts"]} == {"pytorch", "torchscript"}
    assert "aoti: export failed" in result.output
