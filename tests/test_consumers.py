"""Apps outside Python: the C++ (libtorch) and JavaScript (onnxruntime-node) consumers, and the mobile formats
(ORT format, ExecuTorch), each run against a freshly built folder and held to the golden vectors."""

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from export_kit.builder import FP32

ROOT = Path(__file__).resolve().parents[1]
JS = ROOT / "examples" / "js"


@pytest.fixture(scope="module")
def mobile(tmp_path_factory, checkpoint, synthetic):
    """A folder with every consumer's format, verified on the synthetic test split during the build."""
    from conftest import build_folder

    out = tmp_path_factory.mktemp("consumers") / "artifacts"
    report = build_folder(checkpoint, synthetic.test, out,
                          formats=("torchscript", "onnx", "ort", "executorch", "aoti"), bench_batches=())
    return out, report


def _ppm(path: Path, pixels: np.ndarray) -> Path:
    """Binary PPM for RGB pixels, PGM for grayscale ones."""
    h, w, channels = pixels.shape
    magic = "P6" if channels == 3 else "P5"
    path.write_bytes(f"{magic}\n# golden image\n{w} {h}\n255\n".encode() + pixels.tobytes())
    return path


@pytest.fixture(scope="module")
def gray(tmp_path_factory) -> Path:
    """A grayscale model built from RGB images (converted to L by the recorded preprocessing), in TorchScript and
    ONNX."""
    from conftest import write_image_folder
    from test_cli import invoke

    root = tmp_path_factory.mktemp("gray")
    write_image_folder(root / "data", ["a", "b", "c"], per_class=12, size=20)
    result = invoke("build", "--model", "byo_models:gray", "--input-shape", "1x20x20", "--mean", "0.5", "--std",
                    "0.25", "--data-dir", root / "data", "--out", root / "artifacts", "--formats", "torchscript,onnx",
                    "--golden", "12", "--no-bench")
    assert result.exit_code == 0, result.output
    return root / "artifacts"


def _colour_folder(root: Path, names: tuple[str, str, str]) -> Path:
    """train/ and test/ PNGs whose class is their dominant colour: ``names`` for red, green and blue dominance."""
    from PIL import Image

    rng = np.random.default_rng(0)
    for split in ("train", "test"):
        for channel, name in enumerate(names):
            (root / split / name).mkdir(parents=True)
            for i in range(8):
                pixels = rng.integers(0, 90, (12, 12, 3), dtype=np.uint8)
                pixels[..., channel] += 150
                Image.fromarray(pixels).save(root / split / name / f"{i}.png")
    return root


def _colour_build(root: Path, model: str, *options: str) -> Path:
    from test_cli import invoke

    result = invoke("build", "--model", model, "--input-shape", "3x12x12", *options, "--data-dir", root / "data",
                    "--out", root / "artifacts", "--formats", "torchscript,onnx", "--golden", "12", "--no-bench")
    assert result.exit_code == 0, result.output
    return root / "artifacts"


@pytest.fixture(scope="module")
def bgr(tmp_path_factory) -> Path:
    """A BGR model (``byo_models.channel_means``) built from RGB images whose class is their dominant colour
    (folders b, g, r), in TorchScript and ONNX, verified on them."""
    root = tmp_path_factory.mktemp("bgr")
    _colour_folder(root / "data", ("r", "g", "b"))
    return _colour_build(root, "byo_models:channel_means", "--bgr")


@pytest.fixture(scope="module")
def nhwc(tmp_path_factory) -> Path:
    """A channels-last RGB model (``byo_models.channels_last``) built from images whose class is their dominant
    colour (folders 0red, 1green, 2blue), in TorchScript and ONNX, verified on them."""
    root = tmp_path_factory.mktemp("nhwc")
    _colour_folder(root / "data", ("0red", "1green", "2blue"))
    return _colour_build(root, "byo_models:channels_last", "--layout", "nhwc")


def _colour_model_checks(folder: Path, classify: Path, tmp_path: Path, model_order: slice) -> None:
    """Accuracy 1.0 in every row, and both consumers pass the golden check and classify RGB PPMs of the golden
    images (stored in the model's channel order: ``model_order`` turns them back into RGB) as their labels."""
    manifest = json.loads((folder / "manifest.json").read_text())
    rows = [r for r in json.loads((folder / "report.json").read_text())["verify"] if r["device"] == "cpu"]
    assert {r["artifact"] for r in rows} == {"pytorch", "onnx", "torchscript"}
    assert all(r["status"] == "passed" and r["accuracy"] == 1.0 for r in rows), rows
    pixels = np.load(folder / "golden_pixels.npy")
    labels = np.load(folder / "golden.npz")["labels"]
    images = [str(_ppm(tmp_path / f"{i}.ppm", np.ascontiguousarray(pixels[i, ..., model_order]))) for i in range(6)]
    for program in ([str(classify)], [_node(), str(JS / "classify.mjs")]):
        done = subprocess.run([*program, str(folder), "--check"], capture_output=True, text=True, timeout=120)
        assert done.returncode == 0 and done.stdout.startswith("PASS"), done.stdout + done.stderr
        done = subprocess.run([*program, str(folder), *images], capture_output=True, text=True, timeout=120)
        assert _top1_lines(done.stdout) == [manifest["classes"][k] for k in labels[:6]], done.stdout + done.stderr


def test_a_bgr_model_is_fed_reversed_channels_by_python_cpp_and_js(bgr, classify, tmp_path):
    """Every class is its dominant colour, so accuracy 1.0 proves verify reversed the RGB images (fed as they were
    decoded, red and blue would swap: 1/3); the consumers pass the golden check and classify RGB PPMs right."""
    manifest = json.loads((bgr / "manifest.json").read_text())
    assert manifest["preprocessing"]["color"] == "BGR" and manifest["classes"] == ["b", "g", "r"]
    pixels = np.load(bgr / "golden_pixels.npy")  # stored in the model's order: B, G, R
    assert (pixels.mean((1, 2)).argmax(1) == np.load(bgr / "golden.npz")["labels"]).all()
    _colour_model_checks(bgr, classify, tmp_path, slice(None, None, -1))


def test_a_channels_last_model_is_fed_nhwc_by_python_cpp_and_js(nhwc, classify, tmp_path):
    """The model averages axes 1 and 2: fed NCHW it would average over a channel and a row, and its classes would
    be noise; accuracy 1.0 and the consumers' checks show every one lays the input out channels last."""
    manifest = json.loads((nhwc / "manifest.json").read_text())
    assert manifest["preprocessing"]["layout"] == "NHWC" and manifest["input"]["layout"] == "NHWC"
    assert manifest["input"]["shape"] == ["batch", 12, 12, 3]
    golden = np.load(nhwc / "golden.npz")
    assert golden["input_0"].shape == (12, 12, 12, 3)
    _colour_model_checks(nhwc, classify, tmp_path, slice(None))


def _spoiled(folder: Path, tmp_path: Path) -> Path:
    """A copy whose golden logits are off by 1e-3 in one place: a consumer check must fail on it."""
    copy = tmp_path / "spoiled"
    shutil.copytree(folder, copy)
    logits = np.load(copy / "golden_logits.npy")
    logits[7, 3] += 1e-3
    np.save(copy / "golden_logits.npy", logits)
    return copy


def _top1_lines(stdout: str) -> list[str]:
    lines = stdout.splitlines()
    return [lines[i + 1].split()[0] for i, line in enumerate(lines) if line.endswith(".ppm")]


def test_ort_and_executorch_formats_pass_verify_like_the_others(mobile):
    folder, report = mobile
    manifest = json.loads((folder / "manifest.json").read_text())
    rows = {(r["artifact"], r["device"]): r for r in report.verify}
    assert rows[("ort", "cpu")]["status"] == "passed" and rows[("ort", "cpu")]["runtime"] == "onnxruntime-mobile"
    ort = next(a for a in manifest["artifacts"] if a["format"] == "ort")
    assert (folder / ort["details"]["required_operators"]).read_text().count("ai.onnx;") >= 2
    import importlib.util

    if importlib.util.find_spec("executorch") is None:  # the [test] extra installs it; without it, say so
        pytest.skip("executorch is not installed here (pip install 'exportkit[executorch]')")
    assert not [f for f in manifest["failures"] if f["format"] == "executorch"]
    assert rows[("executorch", "cpu")]["status"] == "passed"
    assert (folder / "model.pte").read_bytes()[4:8] == b"ET12"  # the ExecuTorch flatbuffer identifier


def test_executorch_reports_itself_unavailable_without_the_package(tmp_path, checkpoint, synthetic, monkeypatch):
    import importlib.util

    from conftest import build_folder

    real = importlib.util.find_spec
    monkeypatch.setattr(importlib.util, "find_spec", lambda name, *a: None if name == "executorch" else real(name, *a))
    report = build_folder(checkpoint, None, tmp_path / "a", formats=("onnx", "executorch"), bench_batches=())
    assert report.passed, report.failures()
    assert report.export_failures == [{"format": "executorch", "stage": "export", "status": "unavailable",
                                       "reason": report.export_failures[0]["reason"]}]
    assert "executorch package is not installed" in report.export_failures[0]["reason"]


def _checks_and_classifies(program: list[str], folder: Path, tmp_path: Path, options: tuple[str, ...] = ()) -> None:
    """``program FOLDER --check`` passes, and ``program FOLDER IMAGE...`` ranks first each golden image's reference
    class."""
    done = subprocess.run([*program, str(folder), "--check"], capture_output=True, text=True, timeout=120)
    count = json.loads((folder / "manifest.json").read_text())["golden"]["count"]
    assert done.returncode == 0 and done.stdout.startswith(f"PASS: {count} golden images"), done.stdout + done.stderr
    pixels, logits = np.load(folder / "golden_pixels.npy"), np.load(folder / "golden_logits.npy")
    images = [str(_ppm(tmp_path / f"{i}.ppm", pixels[i])) for i in range(5)]
    done = subprocess.run([*program, str(folder), *images, *options], capture_output=True, text=True, timeout=120)
    classes = json.loads((folder / "manifest.json").read_text())["classes"]
    assert done.returncode == 0 and _top1_lines(done.stdout) == [classes[i] for i in logits[:5].argmax(1)]


@pytest.mark.slow
def test_cpp_program_matches_the_golden_vectors_and_classifies_images(mobile, classify, tmp_path):
    _checks_and_classifies([str(classify)], mobile[0], tmp_path, ("--top", "3"))
    _applies_tuned_threads([str(classify)], mobile[0], tmp_path, "torchscript", "torchscript")


@pytest.mark.slow
def test_the_optimised_build_that_make_cpp_gives_users_checks_and_classifies(mobile, classify, tmp_path):
    """The suite's other C++ tests run the sanitized build; this one runs what `make cpp` builds (no SANITIZE)."""
    import sys

    done = subprocess.run([str(ROOT / "examples" / "cpp" / "build.sh"), str(tmp_path / "build")], capture_output=True,
                          text=True, env={"PATH": "/usr/bin:/bin", "PYTHON": sys.executable}, timeout=600)
    assert done.returncode == 0, done.stderr[-3000:]
    assert b"__asan_init" not in (tmp_path / "build" / "classify").read_bytes()
    assert b"__asan_init" in classify.read_bytes() and b"__ubsan_handle" in classify.read_bytes()
    _checks_and_classifies([str(tmp_path / "build" / "classify")], mobile[0], tmp_path)


@pytest.mark.slow
def test_cpp_program_runs_the_aotinductor_package_through_its_loader(mobile, classify, tmp_path):
    folder, report = mobile
    row = next(r for r in report.verify if (r["artifact"], r["device"]) == ("aoti", "cpu"))
    assert row["status"] == "passed" and row["max_abs_err"] <= 1e-4
    _checks_and_classifies([str(classify), "--artifact", "aoti"], folder, tmp_path)
    _applies_tuned_threads([str(classify), "--artifact", "aoti"], folder, tmp_path, "aoti", "aoti")
    done = subprocess.run([str(classify), str(folder), "--artifact", "onnx", "--check"], capture_output=True,
                          text=True, timeout=60)
    assert done.returncode == 3 and "runs on onnxruntime; this program runs TorchScript and AOTInductor" in done.stderr


def test_an_aoti_package_whose_library_was_replaced_is_not_loaded_unless_trusted(mobile, tmp_path):
    """The package's shared library swapped for one whose constructor prints: loading it runs native code, so an
    unsigned folder's package is never opened, and --trust-code opens it (the constructor's output proves it)."""
    import sys
    import zipfile

    from test_hostile_folders import _rehash

    marker = "AOTI-PAYLOAD-RAN-2b7e"
    source = tmp_path / "payload.c"
    source.write_text('#include <unistd.h>\n__attribute__((constructor)) static void run(void) '
                      f'{{ write(2, "{marker}\\n", {len(marker) + 1}); }}\n')
    subprocess.run(["gcc", "-shared", "-fPIC", str(source), "-o", str(tmp_path / "payload.so")], check=True)
    copy = tmp_path / "artifacts"
    shutil.copytree(mobile[0], copy)
    package = copy / "model.aoti.pt2"
    with zipfile.ZipFile(package) as old:
        entries = {info.filename: old.read(info) for info in old.infolist()}
    library = next(name for name in entries if name.endswith(".so"))
    entries[library] = (tmp_path / "payload.so").read_bytes()
    with zipfile.ZipFile(package, "w") as new:
        for name, data in entries.items():
            new.writestr(name, data)
    _rehash(copy, "aoti")
    run = [sys.executable, "-m", "export_kit", "verify", "--artifacts", str(copy), "--device", "cpu", "--no-explain"]
    done = subprocess.run(run, capture_output=True, text=True, timeout=300)
    assert done.returncode == 5 and "NOT RUN aoti on aoti/cpu" in done.stderr, done.stderr
    assert marker not in done.stdout + done.stderr
    scratch = tmp_path / "tmp"
    scratch.mkdir()
    done = subprocess.run([*run, "--trust-code"], capture_output=True, text=True, timeout=300,
                          env={**os.environ, "TMPDIR": str(scratch)})
    assert marker in done.stderr
    # the package was extracted into a private directory and removed, although its load failed
    assert not [p.name for p in scratch.iterdir() if p.name.startswith(("aotinductor_", "exportkit-aoti-"))]


def _applies_tuned_threads(program: list[str], folder: Path, tmp_path: Path, artifact: str, runtime: str) -> None:
    """With the manifest's runtime_settings naming one thread, the consumer says it applied it and still passes."""
    import shutil

    copy = tmp_path / "tuned"
    shutil.copytree(folder, copy)
    manifest = json.loads((copy / "manifest.json").read_text())
    manifest["runtime_settings"] = {artifact: {f"{runtime}/cpu/batch1": {"threads": 1, "spinning": False}}}
    (copy / "manifest.json").write_text(json.dumps(manifest))
    done = subprocess.run([*program, str(copy), "--check"], capture_output=True, text=True, timeout=120)
    assert done.returncode == 0 and "intra-op threads 1" in done.stderr, done.stdout + done.stderr


@pytest.fixture(scope="module")
def heads_and_audio(tmp_path_factory) -> tuple[Path, Path]:
    """A model with two outputs (the classifier second) and one that takes audio, in TorchScript and ONNX."""
    from test_cli import invoke

    root = tmp_path_factory.mktemp("kinds")
    for name, args in (("two_heads", ["--input-shape", "3x16x16", "--classifier", "output1"]),
                       ("audio", ["--input", "audio:float32:batchx1x4000"])):
        result = invoke("build", "--model", f"byo_models:{name}", *args, "--out", root / name, "--formats",
                        "torchscript,onnx", "--golden", "16", "--no-bench")
        assert result.exit_code == 0, result.output
    return root / "two_heads", root / "audio"


def _reads_every_output_and_refuses_audio(program: list[str], folders: tuple[Path, Path], tmp_path: Path) -> None:
    """Both outputs are checked against their own golden files (spoiling the box head's fails the check), and
    a model that takes audio is refused."""
    heads, audio = folders
    done = subprocess.run([*program, str(heads), "--check"], capture_output=True, text=True, timeout=120)
    assert done.returncode == 0 and done.stdout.startswith("PASS: 16 golden images"), done.stdout + done.stderr
    assert "every output checked" in done.stdout and "output" in done.stdout.splitlines()[1]
    spoiled = tmp_path / "spoiled_box"
    shutil.copytree(heads, spoiled)
    box = np.load(spoiled / "golden_output_0.npy")
    box[3, 1] += 1e-3
    np.save(spoiled / "golden_output_0.npy", box)
    done = subprocess.run([*program, str(spoiled), "--check"], capture_output=True, text=True, timeout=120)
    assert done.returncode == 1 and done.stdout.startswith("FAIL") and "FAIL" in done.stdout.splitlines()[1]
    done = subprocess.run([*program, str(audio), "--check"], capture_output=True, text=True, timeout=120)
    assert done.returncode == 3 and "feeds one image input" in done.stderr, done.stdout + done.stderr
    assert len(done.stderr.strip().splitlines()) == 1


@pytest.mark.slow
def test_cpp_program_checks_every_output_of_a_two_output_model_and_refuses_audio(heads_and_audio, classify,
                                                                                 tmp_path):
    _reads_every_output_and_refuses_audio([str(classify)], heads_and_audio, tmp_path)


def test_js_consumer_checks_every_output_of_a_two_output_model_and_refuses_audio(heads_and_audio, tmp_path):
    _reads_every_output_and_refuses_audio([_node(), str(JS / "classify.mjs")], heads_and_audio, tmp_path)


@pytest.mark.slow
def test_cpp_program_runs_a_grayscale_model_and_refuses_an_rgb_image_for_it(gray, classify, tmp_path):
    _checks_and_classifies([str(classify)], gray, tmp_path)
    rgb = _ppm(tmp_path / "rgb.ppm", np.zeros((20, 20, 3), np.uint8))
    done = subprocess.run([str(classify), str(gray), str(rgb)], capture_output=True, text=True)
    assert done.returncode == 3 and "PGM (P5)" in done.stderr, done.stderr


def test_cpp_check_fails_on_wrong_logits_and_bad_input_exits_3(mobile, classify, tmp_path):
    folder, _ = mobile
    done = subprocess.run([str(classify), str(_spoiled(folder, tmp_path)), "--check"], capture_output=True, text=True)
    assert done.returncode == 1 and done.stdout.startswith("FAIL"), done.stdout
    (tmp_path / "bad.ppm").write_bytes(b"P6\n16 16\n255\n" + bytes(16 * 16 * 3))
    done = subprocess.run([str(classify), str(folder), str(tmp_path / "bad.ppm")], capture_output=True, text=True)
    assert done.returncode == 3 and "16x16" in done.stderr and len(done.stderr.splitlines()) == 1
    assert subprocess.run([str(classify), str(folder)], capture_output=True).returncode == 2


def _node() -> str:
    node = shutil.which("node")
    if node is None:
        pytest.skip("Node.js is not installed: the JavaScript consumer needs node and npm")
    if not (JS / "node_modules" / "onnxruntime-node").is_dir():
        pytest.skip("examples/js has no node_modules: run `make js` (npm ci) first")
    return node


def test_js_consumer_matches_the_golden_vectors_and_classifies_images(mobile, tmp_path):
    _checks_and_classifies([_node(), str(JS / "classify.mjs")], mobile[0], tmp_path)
    _applies_tuned_threads([_node(), str(JS / "classify.mjs")], mobile[0], tmp_path, "onnx", "onnxruntime")


def test_js_consumer_runs_a_grayscale_model_and_refuses_an_rgb_image_for_it(gray, tmp_path):
    node = _node()
    _checks_and_classifies([node, str(JS / "classify.mjs")], gray, tmp_path)
    rgb = _ppm(tmp_path / "rgb.ppm", np.zeros((20, 20, 3), np.uint8))
    done = subprocess.run([node, str(JS / "classify.mjs"), str(gray), str(rgb)], capture_output=True, text=True,
                          timeout=120)
    assert done.returncode == 3 and "PGM (P5)" in done.stderr, done.stderr


def test_js_check_fails_on_wrong_logits(mobile, tmp_path):
    node, (folder, _) = _node(), mobile
    done = subprocess.run([node, str(JS / "classify.mjs"), str(_spoiled(folder, tmp_path)), "--check"],
                          capture_output=True, text=True, timeout=120)
    assert done.returncode == 1 and done.stdout.startswith("FAIL"), done.stdout + done.stderr


def test_manifest_carries_the_plain_golden_files_and_their_tolerance(mobile):
    folder, _ = mobile
    golden = json.loads((folder / "manifest.json").read_text())["golden"]
    assert golden["fp32_tolerance"] == {"max_abs": FP32.max_abs, "min_cosine": FP32.min_cosine}
    npz = np.load(folder / golden["path"])
    assert np.array_equal(np.load(folder / golden["plain"]["pixels"]), npz["images"])
    assert np.array_equal(np.load(folder / golden["plain"]["logits"]), npz["output_0"])


def test_the_consumers_read_only_fields_the_manifest_schema_describes():
    """What examples/cpp and examples/js look up in manifest.json, resolved through the published schema."""
    from export_kit.folder.manifest import schema

    read_by_consumers = [("input", "shape"), ("output",), ("preprocessing", "scale"), ("preprocessing", "mean"),
                         ("preprocessing", "std"), ("preprocessing", "color"), ("classes",),
                         ("golden", "plain"), ("golden", "fp32_tolerance"), ("artifacts",)]
    for path in read_by_consumers:
        node = schema()
        for key in path:
            assert key in node.get("required", []), path  # always present, so a consumer may rely on it
            node = node["properties"][key]
            node = next((n for n in node.get("oneOf", []) if n.get("type") == "object"), node)  # or null
    artifact = schema()["$defs"]["artifact"]
    assert {"name", "format", "path"} <= set(artifact["required"])
    for key in ("pixels", "logits"):
        assert key in schema()["properties"]["golden"]["properties"]["plain"]["required"]
    for key in ("max_abs", "min_cosine"):
        assert key in schema()["properties"]["golden"]["properties"]["fp32_tolerance"]["required"]
    examples = Path(__file__).resolve().parents[1] / "examples"
    sources = "".join(f.read_text() for f in [*(examples / "cpp").glob("*.[ch]pp"), examples / "js" / "classify.mjs"])
    for key in ("fp32_tolerance", "plain", "preprocessing", "classes", "artifacts", "runtime_settings"):
        assert key in sources, key
    assert "threads" in schema()["properties"]["runtime_settings"]["additionalProperties"]["additionalProperties"][
        "properties"]


def _checks_int8_against_its_own_class(program: list[str], folder: Path, artifact: str) -> None:
    """An int8 artifact is held to the int8 class (no max-abs bound, 97% agreement), not to fp32's 1e-4."""
    done = subprocess.run([*program, str(folder), "--artifact", artifact, "--check"], capture_output=True, text=True,
                          timeout=120)
    assert done.returncode == 0 and "int8 tolerance" in done.stdout, done.stdout + done.stderr
    assert "(limit 0.97)" in done.stdout


def test_js_consumer_checks_int8_with_its_own_tolerance_and_answers_help(built):
    node = _node()
    _checks_int8_against_its_own_class([node, str(JS / "classify.mjs")], built[0], "int8-onnx")
    done = subprocess.run([node, str(JS / "classify.mjs"), "--help"], capture_output=True, text=True, timeout=60)
    assert done.returncode == 0 and done.stdout.startswith("usage: node classify.mjs ARTIFACTS")


@pytest.mark.slow
def test_cpp_consumer_checks_int8_with_its_own_tolerance(built, classify):
    _checks_int8_against_its_own_class([str(classify)], built[0], "int8-torchscript")


def test_explain_pairs_the_ort_format_file_layer_by_layer_through_its_onnx_source(mobile):
    from export_kit.explain.core import explain_artifact
    from export_kit.folder.access import open_folder

    folder, _ = open_folder(mobile[0], writes=False)
    found = explain_artifact(folder, "ort")
    rows = found.rows()
    assert found.reference == "pytorch" and found.first is None
    assert len(rows) == 12 and rows[3].module == "features.3" and all(r.snr_db is None or r.snr_db > 100 for r in rows)
    assert found.tapped_drift < 1e-4  # the re-converted, tapped program computes what the artifact computes


def test_the_js_resize_graphs_are_what_their_script_writes(tmp_path):
    """examples/js/resize/*.onnx are committed; regenerated here, they must be the same bytes."""
    import sys

    done = subprocess.run([sys.executable, str(JS / "make_resize_graphs.py"), str(tmp_path)], capture_output=True,
                          text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    for name in ("bilinear", "bicubic", "bilinear-no-antialias", "bicubic-no-antialias"):
        assert (tmp_path / f"{name}.onnx").read_bytes() == (JS / "resize" / f"{name}.onnx").read_bytes(), name


def _lying_npy(path: Path, shape: tuple[int, ...], dtype: str) -> None:
    """A .npy whose header declares ``shape`` over a few bytes of data: what a hostile folder would ship."""
    header = f"{{'descr': '{dtype}', 'fortran_order': False, 'shape': {shape}, }}".encode("latin1")
    header += b" " * (63 - (10 + len(header)) % 64) + b"\n"
    path.write_bytes(b"\x93NUMPY\x01\x00" + len(header).to_bytes(2, "little") + header + bytes(16))


def _set_manifest(folder: Path, change) -> None:
    manifest = json.loads((folder / "manifest.json").read_text())
    change(manifest)
    (folder / "manifest.json").write_text(json.dumps(manifest))


def _replace(path: Path, make) -> None:
    path.unlink()
    make(path)


#: (what a hostile folder does, how, the words of the one-line refusal)
HOSTILE_FOLDERS = [
    ("one row of a second output", lambda f: np.save(f / "golden_output_0.npy", np.load(f / "golden_output_0.npy")[:1]),
     "number of rows"),
    ("no golden images", lambda f: [np.save(f / name, np.load(f / name)[:0]) for name in
                                    ("golden_pixels.npy", "golden_logits.npy", "golden_output_0.npy",
                                     "golden_output_1.npy")], "no golden images"),
    ("a shape far beyond the bytes", lambda f: _lying_npy(f / "golden_pixels.npy", (700000, 32, 32, 3), "|u1"),
     "shorter than its shape says"),
    ("a FIFO as a golden file", lambda f: _replace(f / "golden_pixels.npy", os.mkfifo), "not a regular file"),
    ("/dev/zero as a golden file", lambda f: _replace(f / "golden_output_1.npy", lambda p: p.symlink_to("/dev/zero")),
     "not a regular file"),
    ("a FIFO as the manifest", lambda f: _replace(f / "manifest.json", os.mkfifo), "not a regular file"),
    ("classes nested 200,000 deep", lambda f: (f / "manifest.json").write_text(
        (f / "manifest.json").read_text().rstrip()[:-1] + ', "classes": ' + "[" * 200_000 + "]" * 200_000 + "}"),
     "classes"),
    ("an input height of 1e300", lambda f: _set_manifest(f, lambda m: m["input"].update(shape=[1, 3, 1e300, 32])),
     "height"),
    ("a thread count of 1e300", lambda f: _set_manifest(f, lambda m: m.update(runtime_settings={
        a["name"]: {f"{a['runtime']}/cpu/batch1": {"threads": 1e300}} for a in m["artifacts"]})), "threads"),
    ("a zero std", lambda f: _set_manifest(f, lambda m: m["preprocessing"].update(std=[0.0, 0.2, 0.2])), "std"),
    ("a header shape of 2**70", lambda f: _lying_npy(f / "golden_pixels.npy", (2**70, 32, 32, 3), "|u1"),
     "shape"),
]


def _hostile_golden_files_are_refused_before_they_are_read(program: list[str], heads: Path, tmp_path: Path,
                                                           env: dict[str, str] | None = None,
                                                           rss_kib: int = 1_000_000) -> None:
    """Golden files and the manifest are data: each lie is a one-line refusal (exit 3), before any allocation it
    would size and without waiting on a FIFO or reading a device; thread counts are capped at the machine's
    cores."""
    # each consumer runs under a fresh Python whose only child it is, which then reports the child's peak memory
    measured = ("import resource, subprocess, sys; done = subprocess.run(sys.argv[1:]); "
                "print(resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss); sys.exit(done.returncode)")
    for name, spoil, expected in HOSTILE_FOLDERS:
        copy = tmp_path / name.replace(" ", "_").replace("/", "")
        shutil.copytree(heads, copy)
        spoil(copy)
        done = subprocess.run([sys.executable, "-c", measured, *program, str(copy), "--check"], capture_output=True,
                              text=True, timeout=60, env=env)
        assert done.returncode == 3 and expected in done.stderr, (name, done.stdout + done.stderr)
        assert len(done.stderr.strip().splitlines()) == 1, (name, done.stderr)
        assert int(done.stdout.split()[-1]) < rss_kib, name  # never the 2.1 GB a header declared
    copy = tmp_path / "threads"
    shutil.copytree(heads, copy)
    manifest = json.loads((copy / "manifest.json").read_text())
    art = next(a for a in manifest["artifacts"] if a["runtime"] in ("torchscript", "onnxruntime")
               and (a["runtime"] == "onnxruntime") == ("classify.mjs" in program[-1]))
    manifest["runtime_settings"] = {art["name"]: {f"{art['runtime']}/cpu/batch1": {"threads": 3000}}}
    (copy / "manifest.json").write_text(json.dumps(manifest))
    done = subprocess.run([*program, str(copy), "--check"], capture_output=True, text=True, timeout=120)
    assert done.returncode == 0 and f"intra-op threads {os.cpu_count()}" in done.stderr, done.stdout + done.stderr


@pytest.mark.slow
def test_the_cpp_consumer_refuses_hostile_golden_files_before_reading_them(heads_and_audio, classify, tmp_path):
    """Under AddressSanitizer, whose allocator refuses any single allocation over 256 MB: a refusal that came only
    after the declared 2.1 GB was reserved fails here, while the sanitizer's own memory (about 1 GB with libtorch
    loaded) would hide it from a peak-memory bound alone."""
    env = {**os.environ, "ASAN_OPTIONS": "max_allocation_size_mb=256:allocator_may_return_null=0"}
    _hostile_golden_files_are_refused_before_they_are_read([str(classify)], heads_and_audio[0], tmp_path, env=env,
                                                           rss_kib=2_000_000)


def test_the_js_consumer_refuses_hostile_golden_files_before_reading_them(heads_and_audio, tmp_path):
    _hostile_golden_files_are_refused_before_they_are_read([_node(), str(JS / "classify.mjs")], heads_and_audio[0],
                                                           tmp_path)
