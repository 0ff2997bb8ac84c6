"""The command line: exit codes, one-line errors, and no half-written folder."""

import json
import subprocess
import sys

import pytest
from typer.testing import CliRunner

from export_kit.cli.app import app

runner = CliRunner()


def invoke(*args):
    return runner.invoke(app, [str(a) for a in args])


def test_help_lists_the_commands():
    result = invoke("--help")
    assert result.exit_code == 0
    for name in ("build", "verify", "bench", "train"):
        assert name in result.output


@pytest.mark.parametrize("command, words", [("build", "Train (unless --checkpoint or --model)"),
                                            ("verify", "Re-check a built folder"),
                                            ("bench", "Time every artifact"),
                                            ("selftest", "Plant known faults"),
                                            ("explain", "Find the first layer")])
def test_each_command_is_registered_under_its_own_name(command, words):
    """Each command answers --help with its own description: a command dropped from the app fails here even
    though its name appears in other commands' help."""
    result = invoke(command, "--help")
    assert result.exit_code == 0 and words in " ".join(result.output.split()), result.output


def test_version_and_the_short_help_option():
    from export_kit import __version__

    result = invoke("--version")
    assert result.exit_code == 0 and result.output.strip() == f"exportkit {__version__}"
    for args in (("-h",), ("verify", "-h")):
        result = invoke(*args)
        assert result.exit_code == 0 and "Usage: " in result.output, args
    result = invoke("env")
    assert result.exit_code == 0 and json.loads(result.output)["exportkit"] == __version__


def test_help_does_not_import_torch():
    code = "import sys; from export_kit.cli.app import app; assert 'torch' not in sys.modules and 'onnxruntime' " \
           "not in sys.modules"
    subprocess.run([sys.executable, "-c", code], check=True)


@pytest.mark.parametrize("formats, fragment", [
    ("onnx,tflite", "valid formats: aoti, executorch, export, fp16, int8, int8-static, litert, litert-int8, onnx, "
                    "openvino, ort, torchscript"),
    ("", "comma-separated"), ("onnx,onnx", "more than once")])
def test_bad_format_lists_exit_2_before_any_work(tmp_path, formats, fragment):
    result = invoke("build", "--formats", formats, "--out", tmp_path / "out", "--dataset", "synthetic")
    assert result.exit_code == 2
    assert fragment in result.output and "Traceback" not in result.output
    assert not (tmp_path / "out").exists()


@pytest.mark.parametrize("batch", ["0", "1,-4", "x"])
def test_bad_batch_sizes_exit_2(built_copy, batch):
    result = invoke("bench", "--artifacts", built_copy, "--batch", batch)
    assert result.exit_code == 2 and "positive integers" in result.output


def test_folder_without_manifest_exits_3(tmp_path):
    result = invoke("verify", "--artifacts", tmp_path)
    assert result.exit_code == 3
    assert "no manifest.json" in result.output


def test_missing_checkpoint_exits_3(tmp_path):
    result = invoke("build", "--checkpoint", tmp_path / "nope.pt", "--out", tmp_path / "o", "--dataset", "synthetic")
    assert result.exit_code == 3 and "does not exist" in result.output


def test_out_that_is_a_file_exits_2(tmp_path, checkpoint):
    target = tmp_path / "file"
    target.write_text("x")
    result = invoke("build", "--checkpoint", checkpoint, "--out", target, "--dataset", "synthetic")
    assert result.exit_code == 2 and "is a file" in result.output


def test_missing_dataset_exits_3_and_names_the_three_ways(tmp_path):
    result = invoke("train", "--data-dir", tmp_path / "nowhere", "--out", tmp_path / "c.pt")
    assert result.exit_code == 3
    assert "--data-dir" in result.output and "EXPORTKIT_DATA" in result.output and "./data" in result.output


def test_verify_passes_and_fails_with_the_right_exit_code(built_copy):
    assert invoke("verify", "--artifacts", built_copy, "--dataset", "synthetic").exit_code == 0
    manifest = json.loads((built_copy / "manifest.json").read_text())
    manifest["preprocessing"]["std"][2] *= 1.1
    (built_copy / "manifest.json").write_text(json.dumps(manifest))
    result = invoke("verify", "--artifacts", built_copy)
    assert result.exit_code == 1
    assert "FAILED onnx on onnxruntime/cpu: preprocessing" in result.output


def test_unknown_device_is_a_usage_error(built_copy):
    result = invoke("bench", "--artifacts", built_copy, "--device", "tpu")
    assert result.exit_code == 2 and "unknown device 'tpu'" in result.output


@pytest.mark.skipif(__import__("torch").cuda.is_available(), reason="checks the no-CUDA path")
def test_a_device_that_is_not_present_exits_4_with_the_reason(built_copy):
    result = invoke("bench", "--artifacts", built_copy, "--batch", "1", "--device", "cuda")
    assert result.exit_code == 4
    assert "nothing could run on cuda" in result.output and "CUDAExecutionProvider" in result.output


def test_build_with_a_checkpoint_runs_the_whole_pipeline(tmp_path, checkpoint):
    out = tmp_path / "art"
    result = invoke("build", "--checkpoint", checkpoint, "--out", out, "--dataset", "synthetic",
                    "--formats", "onnx", "--no-bench")
    assert result.exit_code == 0, result.output
    report = json.loads((out / "report.json").read_text())
    assert {r["artifact"] for r in report["verify"]} == {"pytorch", "onnx"}
    assert (out / "checkpoint.pt").is_file() and (out / "manifest.json").is_file()


def test_an_interrupted_build_leaves_no_manifest(tmp_path, checkpoint, monkeypatch):
    from export_kit.exporters.base import EXPORTERS

    out = tmp_path / "art"
    assert invoke("build", "--checkpoint", checkpoint, "--out", out, "--dataset", "synthetic", "--formats",
                  "onnx", "--no-bench").exit_code == 0

    def interrupted(self, request):
        raise KeyboardInterrupt

    monkeypatch.setattr(EXPORTERS["onnx"], "export", interrupted)
    result = invoke("build", "--checkpoint", checkpoint, "--out", out, "--dataset", "synthetic", "--formats",
                    "onnx", "--no-bench")
    assert result.exit_code == 130
    assert not (out / "manifest.json").exists()
    assert invoke("verify", "--artifacts", out).exit_code == 3


def test_default_formats_add_static_int8_when_training_images_are_at_hand(tmp_path, checkpoint):
    out = tmp_path / "d"
    result = invoke("build", "--checkpoint", checkpoint, "--out", out, "--dataset", "synthetic", "--no-bench")
    assert result.exit_code == 0, result.output
    names = {a["name"] for a in json.loads((out / "manifest.json").read_text())["artifacts"]}
    assert names == {"pytorch", "onnx", "torchscript", "int8-onnx", "int8-torchscript", "int8-static"}


def test_out_that_cannot_be_created_exits_2(tmp_path, checkpoint):
    blocker = tmp_path / "file"
    blocker.write_text("x")
    result = invoke("build", "--checkpoint", checkpoint, "--out", blocker / "sub", "--dataset", "synthetic")
    assert result.exit_code == 2 and "not writable" in result.output


def test_debug_keeps_the_traceback_for_user_errors(tmp_path):
    result = runner.invoke(app, ["--debug", "verify", "--artifacts", str(tmp_path)])
    assert result.exit_code != 0
    assert type(result.exception).__name__ == "ManifestError"


def _shape_of(folder) -> dict:
    """A manifest without what differs run to run (hashes, sizes, warnings)."""
    data = json.loads((folder / "manifest.json").read_text())
    data["artifacts"] = [{k: a[k] for k in ("name", "format", "path", "runtime", "precision", "opset")}
                         for a in data["artifacts"]]
    data["golden"].pop("sha256")
    return data


def test_the_cli_and_the_python_api_build_the_same_folder(tmp_path, checkpoint, synthetic):
    """Defaults live in the library: `exportkit build` and export_kit.build given the same inputs agree,
    int8-static (the default when calibration images are at hand) included."""
    import torch

    import export_kit
    from export_kit.model.preprocessing import Preprocessing
    from export_kit.model.spec import load_checkpoint

    result = invoke("build", "--checkpoint", checkpoint, "--out", tmp_path / "cli", "--dataset", "synthetic",
                    "--no-bench", "--golden", "40")
    assert result.exit_code == 0, result.output
    model, meta = load_checkpoint(checkpoint)
    export_kit.build(model, torch.zeros(1, *meta["input_shape"]), out=tmp_path / "api", classes=meta["classes"],
                     preprocessing=Preprocessing.from_dict(meta["preprocessing"]), test=synthetic.test,
                     calibration=synthetic.train.subset(30), checkpoint=checkpoint, golden_count=40,
                     model_info={"factory": meta["factory"], "arch": meta.get("arch"),
                                 "test_accuracy": meta["metrics"]["test_accuracy"], "data": meta["data"],
                                 "input_shape": meta["input_shape"]},
                     bench_batches=(), log=lambda _: None)
    cli, api = _shape_of(tmp_path / "cli"), _shape_of(tmp_path / "api")
    assert "int8-static" in [a["name"] for a in cli["artifacts"]]
    assert cli == api
