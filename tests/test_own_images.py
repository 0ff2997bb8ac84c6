"""Your own labelled photos: an ImageFolder of mixed-size JPEGs, resized and cropped by the pipeline the manifest
records, identically for verify, golden vectors and int8 calibration."""

import json
from pathlib import Path

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
    data = manifest["model"]["data"]  # the data's provenance travels with a --model build too
    assert data["test_images"] == 28 and data["skipped_corrupt"] == 0 and data["skipped"] == []
    assert manifest["preprocessing"]["resize"] == {"library": "torch.nn.functional.interpolate (float32)",
                                                   "shorter_side": 72, "interpolation": "bilinear",
                                                   "antialias": True, "center_crop": [64, 64]}
    pixels = np.load(out / "golden_pixels.npy")  # a float resize's values, never rounded to uint8
    assert pixels.shape == (28, 64, 64, 3) and pixels.dtype == np.float32 and (pixels % 1 != 0).any()
    timed = {b["artifact"] for b in report["bench"] if b["status"] == "passed" and b["batch"] == 1}
    assert {"pytorch", "onnx", "torchscript"} <= timed
    assert result.exit_code == (1 if any(r["status"] == "failed" for r in report["verify"]) else 0)
    again = invoke("verify", "--artifacts", out, "--data-dir", root / "data", "--device", "cpu")
    assert again.exit_code == result.exit_code, again.output  # decoded again with the manifest's resize


def test_the_recorded_resizes_are_torchvisions_resize_and_center_crop(tmp_path):
    """The decoder's pixels are exactly what a training pipeline's Resize(72) + CenterCrop(64) gives: on the PIL
    image (PIL library, uint8), and on the image as a float32 tensor (the float library, never rounded)."""
    import torch
    from PIL import Image
    from torchvision import transforms

    from export_kit.model.datasets import load_dataset
    from export_kit.model.geometry import PIL_LIBRARY, TORCH_LIBRARY, Geometry

    write_photo_folder(tmp_path / "d", ["a", "b"], {"train": 1, "test": 2}, seed=3)
    first = Image.open(sorted((tmp_path / "d" / "test" / "a").iterdir())[0]).convert("RGB")
    pipeline = transforms.Compose([transforms.Resize(72), transforms.CenterCrop(64)])
    as_tensor = torch.from_numpy(np.asarray(first).transpose(2, 0, 1).astype(np.float32))
    for library, expected in ((PIL_LIBRARY, np.asarray(pipeline(first))),
                              (TORCH_LIBRARY, pipeline(as_tensor).permute(1, 2, 0).numpy())):
        data = load_dataset("cifar10", tmp_path / "d", progress=False, geometry=Geometry(72, (64, 64),
                                                                                           library=library))
        assert data.test.images.shape == (4, 64, 64, 3) and data.test.images.dtype == expected.dtype
        assert np.array_equal(data.test.images[0], expected), library


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
    for extra, fragment in ((["--no-antialias"], "give it with --resize"),
                            (["--resize", "72", "--interpolation", "lanczos", "--no-antialias"], "always antialiases"),
                            (["--resize", "72", "--interpolation", "area"], "--interpolation must be one of")):
        result = invoke("build", *PHOTOS, *extra, "--data-dir", tmp_path / "d", "--out", tmp_path / "e")
        assert result.exit_code == 2 and fragment in result.output, result.output
        assert not (tmp_path / "e" / "manifest.json").exists()


def _photo_logits(stdout: str) -> np.ndarray:
    return np.array([[float(v) for v in line.split()[1:]] for line in stdout.splitlines()
                     if line.startswith("  logits ")])


def _python_logits(folder, manifest: dict, data, runtime: str) -> np.ndarray:
    """The artifact run in Python on every 4th test photo, decoded and resized as ``manifest`` says."""
    from export_kit.model.datasets import load_dataset
    from export_kit.model.preprocessing import Preprocessing

    prep = Preprocessing.from_dict(manifest["preprocessing"])
    inputs = prep.apply(np.asarray(load_dataset("cifar10", data, progress=False,
                                                geometry=prep.geometry).test.images[::4]))
    if runtime == "torchscript":
        import torch

        module = torch.jit.load(str(folder / "model.torchscript.pt"))
        return np.stack([module(torch.from_numpy(x[None]))[0].detach().numpy() for x in inputs])
    import onnxruntime as ort

    session = ort.InferenceSession(str(folder / "model.onnx"), providers=["CPUExecutionProvider"])
    return np.concatenate([session.run(None, {session.get_inputs()[0].name: x[None]})[0] for x in inputs])


@pytest.fixture(scope="module")
def small_photos(photos):
    """The same photos through ``byo_models.tiny7``, whose logits are large enough for the fp32 bound to bite."""
    root = photos[0]
    out = root / "tiny7"
    result = invoke("build", "--model", "byo_models:tiny7", *PHOTOS[2:], "--resize", "72", "--data-dir",
                    root / "data", "--out", out, "--formats", "onnx,torchscript", "--golden", "28", "--no-bench")
    assert result.exit_code == 0, result.output
    return root, out, result


def _raw_photos_give_pythons_logits(program: list[str], photos, runtime: str, tmp_path) -> None:
    """The golden check passes, and photos straight from the folder (mixed-size JPEGs) get the logits Python gets
    for the same artifact from its own decode and resize, within the fp32 tolerance: as built (bilinear,
    antialiased) and with the manifest switched to bicubic and to no antialiasing; a manifest whose resize is
    PIL's, which the program does not reproduce, makes it refuse a photo of another size."""
    import json
    import shutil
    import subprocess

    root, folder, _ = photos
    done = subprocess.run([*program, str(folder), "--check"], capture_output=True, text=True, timeout=120)
    assert done.returncode == 0 and done.stdout.startswith("PASS: 28 golden images"), done.stdout + done.stderr
    manifest = json.loads((folder / "manifest.json").read_text())
    paths = [p for c in CLASSES for p in sorted((root / "data" / "test" / c).iterdir())][::4]
    limit = manifest["golden"]["fp32_tolerance"]["max_abs"]
    for k, (interpolation, antialias) in enumerate([("bilinear", True), ("bicubic", True), ("bilinear", False),
                                                    ("bicubic", False)]):
        variant = tmp_path / f"v{k}"
        shutil.copytree(folder, variant)
        manifest["preprocessing"]["resize"].update(interpolation=interpolation, antialias=antialias)
        (variant / "manifest.json").write_text(json.dumps(manifest))
        expected = _python_logits(variant, manifest, root / "data", runtime)
        done = subprocess.run([*program, str(variant), "--logits", *map(str, paths)], capture_output=True,
                              text=True, timeout=120)
        assert done.returncode == 0, done.stdout + done.stderr
        got = _photo_logits(done.stdout)
        assert got.shape == expected.shape == (7, 7)
        assert np.abs(expected).max() > 0.05  # logits of a size the bound means something for
        assert np.abs(got - expected).max() <= limit, (interpolation, antialias, np.abs(got - expected).max())
    manifest["preprocessing"]["resize"]["library"] = "torchvision.transforms.functional (PIL)"
    (variant / "manifest.json").write_text(json.dumps(manifest))
    done = subprocess.run([*program, str(variant), str(paths[0])], capture_output=True, text=True, timeout=120)
    assert done.returncode == 3 and "does not reproduce" in done.stderr, done.stderr


@pytest.mark.slow
def test_cpp_consumer_classifies_raw_photos_with_the_logits_python_gets(small_photos, classify, tmp_path):
    _raw_photos_give_pythons_logits([str(classify)], small_photos, "torchscript", tmp_path)


def test_js_consumer_classifies_raw_photos_with_the_logits_python_gets(small_photos, tmp_path):
    from test_consumers import JS, _node

    _raw_photos_give_pythons_logits([_node(), str(JS / "classify.mjs")], small_photos, "onnx", tmp_path)


def test_the_photo_logit_bound_would_catch_a_rounded_resize_or_another_filter(small_photos):
    """The control for the two tests above: Python's own logits through PIL's uint8 resize instead of the float one
    (1.7e-4 here), or through bicubic instead of bilinear, differ from the right ones by more than the fp32 bound,
    so a consumer that rounded, or picked another filter, would fail them."""
    import json

    root, folder, _ = small_photos
    manifest = json.loads((folder / "manifest.json").read_text())
    limit = manifest["golden"]["fp32_tolerance"]["max_abs"]
    exact = _python_logits(folder, manifest, root / "data", "onnx")
    rounded = json.loads(json.dumps(manifest))
    rounded["preprocessing"]["resize"]["library"] = "torchvision.transforms.functional (PIL)"
    assert np.abs(_python_logits(folder, rounded, root / "data", "onnx") - exact).max() > limit
    manifest["preprocessing"]["resize"]["interpolation"] = "bicubic"
    assert np.abs(_python_logits(folder, manifest, root / "data", "onnx") - exact).max() > 10 * limit


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


def _odd_files(root) -> dict:
    """One file per rule of the decoding contract, as photos arrive from phones and scanners."""
    from PIL import Image

    root.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(5)
    pixels = rng.integers(0, 256, (120, 90, 3), dtype=np.uint8)
    files = {name: root / name for name in ("rotated.jpg", "alpha.png", "cmyk.jpg", "deep.png", "truncated.jpg",
                                            "huge.jpg")}
    exif = Image.Exif()
    exif[0x0112] = 6  # "rotate 90 degrees to display": ignored by the contract
    Image.fromarray(pixels).save(files["rotated.jpg"], quality=95, exif=exif)
    Image.fromarray(np.dstack([pixels, np.full((120, 90), 7, np.uint8)])).save(files["alpha.png"])
    Image.fromarray(pixels).convert("CMYK").save(files["cmyk.jpg"], quality=95)
    Image.fromarray(pixels[..., 0].astype(np.uint16) * 257).save(files["deep.png"])  # mode I;16
    whole = (root / "whole.jpg")
    Image.fromarray(pixels).save(whole, quality=95)
    files["truncated.jpg"].write_bytes(whole.read_bytes()[: whole.stat().st_size // 2])
    # a few kB whose frame header (SOF0: marker, length, precision, height, width) declares 20000 x 20000
    data = bytearray(whole.read_bytes())
    sof = data.index(b"\xff\xc0")
    data[sof + 5:sof + 9] = (20000).to_bytes(2, "big") * 2
    files["huge.jpg"].write_bytes(bytes(data))
    return files


REFUSED = {"cmyk.jpg": "CMYK", "deep.png": "I;16", "truncated.jpg": "not a readable image", "huge.jpg": "pixels"}


def test_the_loader_refuses_what_the_contract_refuses_and_says_so_on_every_run(tmp_path, capsys):
    from conftest import write_photo_folder

    from export_kit.model.datasets import load_dataset
    from export_kit.model.datasets.decode import Refused, open_rgb

    files = _odd_files(tmp_path / "odd")
    assert open_rgb(files["rotated.jpg"]).size == (90, 120)  # file order: the EXIF rotation is not applied
    assert np.asarray(open_rgb(files["alpha.png"])).shape == (120, 90, 3)
    for name, reason in REFUSED.items():
        with pytest.raises(Refused, match=reason):
            open_rgb(files[name])
    data = tmp_path / "data"
    write_photo_folder(data, CLASSES[:2], {"train": 1, "test": 2})
    for name in files:
        (data / "test" / CLASSES[0] / name).write_bytes(files[name].read_bytes())
    for _ in range(2):  # a cold decode, then the cache: the same line both times
        dataset = load_dataset("cifar10", data, progress=False, geometry=_geometry())
        assert "skipped 4 image(s) outside the decoding contract" in capsys.readouterr().out
    skipped = {Path(s["path"]).name: s["reason"] for s in dataset.provenance["skipped"]}
    assert set(skipped) == set(REFUSED) and dataset.provenance["skipped_corrupt"] == 4
    assert all(reason in skipped[name] for name, reason in REFUSED.items())


def _geometry():
    from export_kit.model.geometry import Geometry

    return Geometry.for_model(72, (64, 64), "bilinear", "RGB", True)


def _file_logits(folder, manifest: dict, path, runtime: str) -> np.ndarray:
    """Python's logits for one file: decoded under the contract, resized and normalized as the manifest says."""
    from export_kit.model.datasets.decode import open_rgb
    from export_kit.model.preprocessing import Preprocessing

    prep = Preprocessing.from_dict(manifest["preprocessing"])
    x = prep.apply(np.asarray(prep.geometry.apply(open_rgb(path)), dtype=prep.geometry.dtype)[None])
    if runtime == "torchscript":
        import torch

        return torch.jit.load(str(folder / "model.torchscript.pt"))(torch.from_numpy(x))[0].detach().numpy()
    import onnxruntime as ort

    session = ort.InferenceSession(str(folder / "model.onnx"), providers=["CPUExecutionProvider"])
    return session.run(None, {session.get_inputs()[0].name: x})[0][0]


def _consumer_obeys_the_contract(program: list[str], small_photos, runtime: str, readable: tuple[str, ...],
                                 tmp_path) -> None:
    """Accepted files get Python's logits (the rotation ignored by both, the alpha dropped by both); refused ones
    exit 3 with the reason."""
    import subprocess

    _, folder, _ = small_photos
    manifest = json.loads((folder / "manifest.json").read_text())
    assert manifest["preprocessing"]["decode"]["exif_orientation"] == "ignored"
    files = _odd_files(tmp_path / "odd")
    for name in readable:
        done = subprocess.run([*program, str(folder), "--logits", str(files[name])], capture_output=True,
                              text=True, timeout=120)
        assert done.returncode == 0, done.stdout + done.stderr
        got, expected = _photo_logits(done.stdout)[0], _file_logits(folder, manifest, files[name], runtime)
        assert np.abs(got - expected).max() <= manifest["golden"]["fp32_tolerance"]["max_abs"], name
    for name in REFUSED:
        if name.endswith(".png") and "classify.mjs" not in program[-1]:
            continue  # the C++ consumer reads JPEG and PPM only: a PNG is refused as such
        done = subprocess.run([*program, str(folder), str(files[name])], capture_output=True, text=True,
                              timeout=120)
        assert done.returncode == 3 and len(done.stderr.strip().splitlines()) == 1, (name, done.stderr)
        assert {"cmyk.jpg": "CMYK", "deep.png": "8-bit", "truncated.jpg": "truncated", "huge.jpg": "pixel"}[name] \
            in done.stderr or (
            name == "truncated.jpg" and "read whole" in done.stderr), (name, done.stderr)


@pytest.mark.slow
def test_the_cpp_consumer_decodes_photos_under_the_manifests_contract(small_photos, classify, tmp_path):
    _consumer_obeys_the_contract([str(classify)], small_photos, "torchscript", ("rotated.jpg",), tmp_path)


def test_the_js_consumer_decodes_photos_under_the_manifests_contract(small_photos, tmp_path):
    from test_consumers import JS, _node

    _consumer_obeys_the_contract([_node(), str(JS / "classify.mjs")], small_photos, "onnx",
                                 ("rotated.jpg", "alpha.png"), tmp_path)


def test_an_image_declaring_more_pixels_than_the_cap_is_refused_before_it_is_decoded(tmp_path):
    """A PNG of a few hundred bytes whose header says 13000 x 13000: refused from its header, never inflated."""
    import struct
    import zlib

    from PIL import Image

    from export_kit.model.datasets.decode import MAX_PIXELS, Refused, open_rgb

    small = tmp_path / "small.png"
    Image.new("L", (8, 8)).save(small)
    data = bytearray(small.read_bytes())
    ihdr = data.index(b"IHDR")
    data[ihdr + 4:ihdr + 12] = struct.pack(">II", 13000, 13000)
    data[ihdr + 17:ihdr + 21] = struct.pack(">I", zlib.crc32(bytes(data[ihdr:ihdr + 17])))
    (tmp_path / "huge.png").write_bytes(bytes(data))
    assert MAX_PIXELS < 13000 * 13000 and (tmp_path / "huge.png").stat().st_size < 1000
    with pytest.raises(Refused, match="more than 150,000,000 pixels"):
        open_rgb(tmp_path / "huge.png")
