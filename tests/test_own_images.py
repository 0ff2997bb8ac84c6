"""Your own labelled photos: an ImageFolder of mixed-size JPEGs, resized and cropped by the pipeline the manifest
records, identically for verify, golden vectors and int8 calibration."""

import json

import numpy as np
import pytest
from conftest import write_photo_folder
from test_cli import invoke

CLASSES = [f"kind{i}" for i in range(7)]
PHOTOS = ["--model", "byo_models:vision7", "--input-shape", "3x64x64", "--mean", "0.485,0.456,0.406", "--std",
          "0.229,0.224,0.225"]


@pytest.fixture(scope="module")
def photos(tmp_path_factory):
    root = tmp_path_factory.mktemp("photos")
    write_photo_folder(root / "data", CLASSES, {"train": 3, "test": 4})
    out = root / "artifacts"
    result = invoke("build", *PHOTOS, "--resize", "72", "--data-dir", root / "data", "--out", out, "--golden",
                    "28", "--batch", "1", "--bench-processes", "0")
    return root, out, result


@pytest.mark.slow
def test_mixed_size_photos_are_resized_as_recorded_and_accuracy_is_measured_per_format(photos):
    root, out, result = photos
    report = json.loads((out / "report.json").read_text())
    rows = {r["artifact"]: r for r in report["verify"] if r["device"] == "cpu"}
    assert {"pytorch", "onnx", "torchscript", "int8-onnx", "int8-torchscript", "int8-static"} <= set(rows)
    for name, row in rows.items():
        assert row["accuracy"] is not None, name  # every format, on the 28 test photos
        if row["precision"] == "fp32":
            assert row["status"] == "passed", (name, row["reason"])
    manifest = json.loads((out / "manifest.json").read_text())
    assert manifest["classes"] == CLASSES
    assert manifest["preprocessing"]["resize"] == {"library": "torchvision.transforms.functional (PIL)",
                                                   "shorter_side": 72, "interpolation": "bilinear",
                                                   "antialias": True, "center_crop": [64, 64]}
    assert np.load(out / "golden_pixels.npy").shape == (28, 64, 64, 3)
    timed = {b["artifact"] for b in report["bench"] if b["status"] == "passed" and b["batch"] == 1}
    assert {"pytorch", "onnx", "torchscript"} <= timed
    assert result.exit_code == (1 if any(r["status"] == "failed" for r in report["verify"]) else 0)
    again = invoke("verify", "--artifacts", out, "--data-dir", root / "data", "--device", "cpu")
    assert again.exit_code == result.exit_code, again.output  # decoded again with the manifest's resize


def test_the_recorded_resize_is_torchvisions_resize_and_center_crop(tmp_path):
    """The decoder's pixels are exactly what a training pipeline's Resize(72) + CenterCrop(64) gives."""
    from PIL import Image
    from torchvision import transforms

    from export_kit.datasets import load_dataset
    from export_kit.geometry import Geometry

    write_photo_folder(tmp_path / "d", ["a", "b"], {"train": 1, "test": 2}, seed=3)
    data = load_dataset("cifar10", tmp_path / "d", progress=False, geometry=Geometry(72, (64, 64)))
    first = sorted((tmp_path / "d" / "test" / "a").iterdir())[0]
    expected = transforms.Compose([transforms.Resize(72), transforms.CenterCrop(64)])(
        Image.open(first).convert("RGB"))
    assert data.test.images.shape == (4, 64, 64, 3)
    assert np.array_equal(data.test.images[0], np.asarray(expected))


def test_mixed_sizes_without_a_resize_and_empty_class_folders_are_usage_errors(tmp_path):
    write_photo_folder(tmp_path / "d", CLASSES[:3], {"train": 1, "test": 2})
    result = invoke("build", *PHOTOS, "--data-dir", tmp_path / "d", "--out", tmp_path / "a", "--no-bench")
    assert result.exit_code == 2 and "give build --resize N" in result.output
    assert not (tmp_path / "a" / "manifest.json").exists()
    for image in (tmp_path / "d" / "test" / CLASSES[1]).iterdir():
        image.unlink()
    result = invoke("build", *PHOTOS, "--resize", "72", "--data-dir", tmp_path / "d", "--out", tmp_path / "b",
                    "--no-bench")
    assert result.exit_code == 2 and f"test/{CLASSES[1]} has no images" in result.output
    result = invoke("build", *PHOTOS, "--resize", "40", "--data-dir", tmp_path / "d", "--out", tmp_path / "c")
    assert result.exit_code == 2 and "smaller than the crop 64x64" in result.output


def _golden_check_and_raw_photo_refusal(program: list[str], folder, tmp_path) -> None:
    import subprocess

    done = subprocess.run([*program, str(folder), "--check"], capture_output=True, text=True, timeout=120)
    assert done.returncode == 0 and done.stdout.startswith("PASS: 28 golden images"), done.stdout + done.stderr
    raw = tmp_path / "raw.ppm"  # a photo as it arrives, 100x80: these programs do not resize
    raw.write_bytes(b"P6\n100 80\n255\n" + bytes(100 * 80 * 3))
    done = subprocess.run([*program, str(folder), str(raw)], capture_output=True, text=True, timeout=120)
    assert done.returncode == 3 and "this program does not resize" in done.stderr, done.stderr


@pytest.mark.slow
def test_cpp_consumer_passes_the_golden_check_of_a_resized_folder_and_refuses_raw_photos(photos, classify,
                                                                                         tmp_path):
    _golden_check_and_raw_photo_refusal([str(classify)], photos[1], tmp_path)


def test_js_consumer_passes_the_golden_check_of_a_resized_folder_and_refuses_raw_photos(photos, tmp_path):
    from test_consumers import JS, _node

    _golden_check_and_raw_photo_refusal([_node(), str(JS / "classify.mjs")], photos[1], tmp_path)


def test_a_folder_with_test_images_only_verifies_accuracy_without_calibration(tmp_path):
    import shutil

    write_photo_folder(tmp_path / "d", CLASSES[:3], {"train": 1, "test": 3})
    shutil.rmtree(tmp_path / "d" / "train")
    out = tmp_path / "a"
    result = invoke("build", "--model", "byo_models:tiny", "--input-shape", "3x20x20", "--resize", "24",
                    "--data-dir", tmp_path / "d", "--out", out, "--golden", "9", "--no-bench")
    assert result.exit_code == 0, result.output
    report = json.loads((out / "report.json").read_text())
    assert {r["artifact"] for r in report["verify"]} == {"pytorch", "onnx", "torchscript", "int8-onnx",
                                                           "int8-torchscript"}  # no int8-static: nothing to calibrate
    assert all(r["accuracy"] is not None for r in report["verify"] if r["device"] == "cpu")
    from conftest import write_image_folder

    write_image_folder(tmp_path / "same", CLASSES[:3], 2, size=32)
    shutil.rmtree(tmp_path / "same" / "train")
    result = invoke("build", "--data-dir", tmp_path / "same", "--out", tmp_path / "t", "--no-bench")
    assert result.exit_code == 2 and "has no train/ folder" in result.output
