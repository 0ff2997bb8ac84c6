"""Hostile artifacts folders, built the way an attacker would (hashes in the manifest updated): no code runs, no
write leaves the folder, no resource is exhausted, no forgery passes, and each is one line with its exit code."""

import json
import os
import subprocess
import sys
import zipfile
from pathlib import Path

import numpy as np
import pytest
import torch
from test_cli import invoke

from export_kit.errors import EXIT_UNTRUSTED, ManifestError
from export_kit.model.spec import read_checkpoint
from export_kit.safeio.atomic import sha256_file
from export_kit.safeio.limits import check_zip


def _manifest(folder: Path) -> dict:
    return json.loads((folder / "manifest.json").read_text())


def _write_manifest(folder: Path, data: dict) -> None:
    (folder / "manifest.json").write_text(json.dumps(data))


def _rehash(folder: Path, name: str) -> None:
    """What an attacker does after replacing a file: make the manifest agree with it."""
    data = _manifest(folder)
    art = next(a for a in data["artifacts"] if a["name"] == name)
    art["sha256"], art["bytes"] = sha256_file(folder / art["path"]), (folder / art["path"]).stat().st_size
    _write_manifest(folder, data)


def _one_line(result, code: int, fragment: str) -> None:
    assert result.exit_code == code, result.output
    assert fragment in result.output and "Traceback" not in result.output


def _plant_factory(folder: Path, factory: str, kwargs: dict) -> None:
    payload = read_checkpoint(folder / "checkpoint.pt")
    payload["factory"], payload["kwargs"] = factory, kwargs
    torch.save(payload, folder / "checkpoint.pt")
    _rehash(folder, "pytorch")


@pytest.mark.parametrize("factory", ["os:system", "subprocess:getoutput"])
@pytest.mark.parametrize("command", ["verify", "bench", "selftest"])
def test_a_checkpoint_naming_a_foreign_factory_runs_nothing(built_copy, tmp_path, factory, command):
    marker = tmp_path / "MARKER"
    _plant_factory(built_copy, factory, {"command" if factory == "os:system" else "cmd": f"touch {marker}"})
    extra = ["--batch", "1"] if command == "bench" else []
    result = invoke(command, "--artifacts", built_copy, *extra)
    _one_line(result, 3, f"--allow-factory {factory}")
    assert not marker.exists()


def test_build_from_a_checkpoint_with_a_foreign_factory_is_refused(built_copy, tmp_path):
    marker = tmp_path / "MARKER"
    _plant_factory(built_copy, "os:system", {"command": f"touch {marker}"})
    result = invoke("build", "--checkpoint", built_copy / "checkpoint.pt", "--out", tmp_path / "o",
                    "--dataset", "synthetic", "--no-bench")
    _one_line(result, 3, "not allowed")
    assert not marker.exists()


def test_an_allowed_factory_with_non_data_arguments_is_refused(built_copy):
    _plant_factory(built_copy, "train.models:seed_cnn", {"num_classes": float("nan")})
    _one_line(invoke("verify", "--artifacts", built_copy), 3, "not plain data")


class _Payload(torch.nn.Module):
    """A TorchScript module whose ``__setstate__`` (run by ``torch.jit.load``) prints the marker: code ran."""

    def __init__(self, marker: str) -> None:
        super().__init__()
        self.marker = marker
        self.inner = torch.nn.Identity()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.inner(x)

    @torch.jit.export
    def __getstate__(self) -> tuple[str, bool]:
        return (self.marker, self.training)

    @torch.jit.export
    def __setstate__(self, state: tuple[str, bool]) -> None:
        self.marker = state[0]
        self.training = state[1]
        print(self.marker)


def _plant_torchscript_payload(folder: Path, marker: str) -> None:
    real = torch.jit.load(str(folder / "model.torchscript.pt"))

    class Wrapped(torch.nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.payload = _Payload(marker)
            self.real = real

        def forward(self, x: torch.Tensor) -> torch.Tensor:
            return self.real(self.payload(x))

    torch.jit.save(torch.jit.script(Wrapped()), str(folder / "model.torchscript.pt"))
    _rehash(folder, "torchscript")


def _exportkit(*args) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "export_kit", *map(str, args)], capture_output=True, text=True)


def test_a_torchscript_payload_in_an_unsigned_folder_is_not_loaded(built_copy):
    marker = "PAYLOAD-RAN-7f3a"
    _plant_torchscript_payload(built_copy, marker)
    done = _exportkit("verify", "--artifacts", built_copy)
    assert done.returncode == EXIT_UNTRUSTED, done.stderr
    assert "NOT RUN torchscript on torchscript/cpu" in done.stderr and marker not in done.stdout + done.stderr
    assert "signature does not match" in done.stdout
    rows = json.loads((built_copy / "report.json").read_text())["verify"]
    assert all(r["status"] == "passed" for r in rows if r["runtime"] != "torchscript" and r["device"] == "cpu")
    done = _exportkit("bench", "--artifacts", built_copy, "--batch", "1", "--processes", "1")
    assert done.returncode == EXIT_UNTRUSTED and marker not in done.stdout + done.stderr
    done = _exportkit("verify", "--artifacts", built_copy, "--trust-code")  # the user's explicit choice: it runs
    assert marker in done.stdout
    done = _exportkit("bench", "--artifacts", built_copy, "--batch", "1", "--processes", "1", "--device", "cpu",
                      "--trust-code")  # and a bench worker's output reaches the user, so the check above can fail
    assert marker in done.stderr


class _Print:
    """Unpickling this prints its marker: the smallest proof that a loader ran code from a file."""

    def __init__(self, marker: str) -> None:
        self.marker = marker

    def __reduce__(self):
        return print, (self.marker,)


def _plant_pt2_payload(folder: Path, marker: str) -> None:
    """Mark the first weight of model.pt2 as pickled and make it a pickle that prints: torch.export.load unpickles
    such weights with weights_only=False."""
    import pickle

    path = folder / "model.pt2"
    with zipfile.ZipFile(path) as old:
        entries = {info.filename: old.read(info) for info in old.infolist()}
    config_name = next(n for n in entries if n.endswith("model_weights_config.json"))
    config = json.loads(entries[config_name])
    first = next(iter(config["config"].values()))
    first["use_pickle"] = True
    entries[config_name] = json.dumps(config).encode()
    entries[next(n for n in entries if n.endswith("weights/" + first["path_name"]))] = pickle.dumps(_Print(marker))
    with zipfile.ZipFile(path, "w") as new:
        for name, data in entries.items():
            new.writestr(name, data)
    _rehash(folder, "export")


def test_a_pt2_payload_in_an_unsigned_folder_is_not_loaded(tmp_path, checkpoint):
    from conftest import build_folder

    folder = tmp_path / "artifacts"
    build_folder(checkpoint, None, folder, formats=("onnx", "export"), bench_batches=())
    marker = "PT2-PAYLOAD-RAN-51c9"
    _plant_pt2_payload(folder, marker)
    done = _exportkit("verify", "--artifacts", folder)
    assert done.returncode == EXIT_UNTRUSTED, done.stderr
    assert "NOT RUN export on torch-export/cpu" in done.stderr and marker not in done.stdout + done.stderr
    (folder / "manifest.sig").unlink()  # as an attacker would: no signature at all rather than a broken one
    before = (folder / "manifest.json").read_bytes()
    for trust in ((), ("--trust-code",)):  # trusting code for one run never makes the folder trusted for good
        done = _exportkit("bench", "--artifacts", folder, "--tune", "--batch", "1", "--processes", "1", *trust)
        assert done.returncode == EXIT_UNTRUSTED, done.stderr
        assert "needs a folder signed by a trusted key" in done.stderr and marker not in done.stdout + done.stderr
        assert not (folder / "manifest.sig").exists() and (folder / "manifest.json").read_bytes() == before
    done = _exportkit("verify", "--artifacts", folder)
    assert done.returncode == EXIT_UNTRUSTED and marker not in done.stdout + done.stderr
    done = _exportkit("verify", "--artifacts", folder, "--trust-code")  # the user's explicit choice: it runs
    assert marker in done.stdout


def test_signed_folders_are_trusted_by_key_and_tampering_after_signing_is_seen(built_copy, tmp_path, monkeypatch):
    home = Path(os.environ["EXPORTKIT_HOME"])
    assert invoke("verify", "--artifacts", built_copy).exit_code == 0  # built (signed) on this machine
    monkeypatch.setenv("EXPORTKIT_HOME", str(tmp_path / "another-machine"))
    result = invoke("verify", "--artifacts", built_copy)
    assert result.exit_code == EXIT_UNTRUSTED and "not trusted here" in result.output
    assert invoke("verify", "--artifacts", built_copy, "--trust-key", home / "signing_key.pub").exit_code == 0
    data = _manifest(built_copy)
    data["model"]["note"] = "edited after signing"
    _write_manifest(built_copy, data)
    result = invoke("verify", "--artifacts", built_copy, "--trust-key", home / "signing_key.pub")
    assert result.exit_code == EXIT_UNTRUSTED and "changed after signing" in result.output
    (tmp_path / "bad.pub").write_text("ssh-ed25519 AAAA\n")
    _one_line(invoke("verify", "--artifacts", built_copy, "--trust-key", tmp_path / "bad.pub"), 2, "public key")


def test_a_folder_never_vouches_for_itself_with_a_key_it_carries(built_copy, tmp_path, monkeypatch):
    """EXPORTKIT_HOME pointed into a copied folder (by hand or by a script's relative path) would make the
    folder's own key "this machine's": such a key is not trusted, and a relative home is refused."""
    import stat

    from export_kit.folder.signing import sign_folder

    monkeypatch.setenv("EXPORTKIT_HOME", str(built_copy / ".keys"))
    sign_folder(built_copy)  # the attacker's key, shipped inside the folder, signs the folder
    result = invoke("verify", "--artifacts", built_copy)
    assert result.exit_code == EXIT_UNTRUSTED and "not trusted here" in result.output, result.output
    monkeypatch.setenv("EXPORTKIT_HOME", ".keys")
    _one_line(invoke("verify", "--artifacts", built_copy), 2, "EXPORTKIT_HOME must be an absolute path")
    home = tmp_path / "fresh"
    monkeypatch.setenv("EXPORTKIT_HOME", str(home))
    sign_folder(built_copy)
    assert stat.S_IMODE((home / "signing_key.pem").stat().st_mode) == 0o600
    assert stat.S_IMODE(home.stat().st_mode) == 0o700
    assert invoke("verify", "--artifacts", built_copy).exit_code == 0  # signed by this machine's own key: trusted


def _zip_bomb(path: Path, declared: int) -> None:
    with zipfile.ZipFile(path, "w", compression=zipfile.ZIP_DEFLATED) as archive, \
            archive.open("archive/data.pkl", "w", force_zip64=True) as entry:
        block = bytes(1 << 20)
        for _ in range(declared >> 20):
            entry.write(block)


def test_a_torchscript_zip_bomb_is_refused_unread(built_copy, tmp_path):
    bomb = built_copy / "model.torchscript.pt"
    _zip_bomb(bomb, 200 << 20)
    assert bomb.stat().st_size < 1 << 20
    with pytest.raises(ManifestError, match="refused unread"):
        check_zip(bomb)
    _rehash(built_copy, "torchscript")
    result = invoke("verify", "--artifacts", built_copy, "--trust-code")
    assert result.exit_code == 1 and "refused unread" in result.output


def test_a_plot_replaced_by_a_symlink_is_never_written_through(built_copy, tmp_path):
    outside = tmp_path / "precious.txt"
    outside.write_text("keep me")
    (built_copy / "latency.png").unlink(missing_ok=True)
    (built_copy / "latency.png").symlink_to(outside)
    _one_line(invoke("verify", "--artifacts", built_copy), 3, "symbolic link")
    _one_line(invoke("bench", "--artifacts", built_copy, "--batch", "1"), 3, "symbolic link")
    assert outside.read_text() == "keep me"
    report = tmp_path / "reports"
    assert invoke("verify", "--artifacts", built_copy, "--report-dir", report).exit_code == 0
    assert (report / "report.md").is_file() and outside.read_text() == "keep me"


def test_selftest_copies_only_listed_plain_files(built_copy, tmp_path):
    (built_copy / "notes.bin").symlink_to("/dev/zero")
    (built_copy / "stray.txt").write_text("not listed")
    result = invoke("selftest", "--artifacts", built_copy)
    assert result.exit_code == 0, result.output


def test_an_inflating_golden_file_is_refused_before_it_is_read(built_copy):
    golden = built_copy / "golden.npz"
    with np.load(golden) as npz:
        arrays = {k: npz[k] for k in npz.files}
    with zipfile.ZipFile(golden, "w", compression=zipfile.ZIP_DEFLATED) as archive:
        for key, value in arrays.items():
            if key != "input_0":
                with archive.open(f"{key}.npy", "w") as fh:
                    np.lib.format.write_array(fh, value)
        with archive.open("input_0.npy", "w", force_zip64=True) as fh:
            np.lib.format.write_array_header_1_0(fh, {"descr": "<f4", "fortran_order": False,  # 60x too many
                                                      "shape": (len(arrays["input_0"]) * 1000, 3, 32, 32)})
            for _ in range(64):
                fh.write(bytes(1 << 20))
    data = _manifest(built_copy)
    data["golden"]["sha256"] = sha256_file(golden)
    _write_manifest(built_copy, data)
    _one_line(invoke("verify", "--artifacts", built_copy), 3, "refused unread")


def test_a_read_only_folder_is_refused_up_front_and_report_dir_works(built_copy, tmp_path, monkeypatch):
    import export_kit.folder.access as access

    real = access.tempfile.mkstemp

    def read_only(prefix, dir):  # root ignores chmod, so the file system's refusal is simulated
        if Path(dir) == built_copy:
            raise PermissionError(30, "Read-only file system")
        return real(prefix=prefix, dir=dir)

    monkeypatch.setattr(access.tempfile, "mkstemp", read_only)
    before = sorted(p.name for p in built_copy.iterdir())
    _one_line(invoke("verify", "--artifacts", built_copy), 2, "--report-dir")
    assert sorted(p.name for p in built_copy.iterdir()) == before
    assert invoke("verify", "--artifacts", built_copy, "--report-dir", tmp_path / "r").exit_code == 0


def test_swapped_class_names_are_seen(built_copy):
    data = _manifest(built_copy)
    data["classes"][3], data["classes"][5] = data["classes"][5], data["classes"][3]
    _write_manifest(built_copy, data)
    result = invoke("verify", "--artifacts", built_copy)
    assert result.exit_code == 1 and "consistency" in result.output and "classes differ" in result.output


def test_an_int8_file_relabelled_as_the_fp32_onnx_is_seen(built_copy):
    (built_copy / "model.onnx").write_bytes((built_copy / "model.int8.onnx").read_bytes())
    data = _manifest(built_copy)
    next(a for a in data["artifacts"] if a["name"] == "onnx")["precision"] = "int8"
    _write_manifest(built_copy, data)
    _rehash(built_copy, "onnx")
    result = invoke("verify", "--artifacts", built_copy)
    assert result.exit_code == 1 and "format onnx makes fp32 files" in result.output
    data = _manifest(built_copy)
    next(a for a in data["artifacts"] if a["name"] == "onnx")["precision"] = "fp32"
    _write_manifest(built_copy, data)
    assert "graph has quantized operators" in invoke("verify", "--artifacts", built_copy).output


def test_a_consistent_preprocessing_forgery_is_seen(built_copy, synthetic):
    data = _manifest(built_copy)
    data["preprocessing"]["mean"] = [m + 0.05 for m in data["preprocessing"]["mean"]]
    _write_manifest(built_copy, data)
    golden = built_copy / "golden.npz"
    with np.load(golden) as npz:
        arrays = {k: npz[k] for k in npz.files}
    arrays["input_0"] = arrays["input_0"] - np.float32(0.05) / np.array(data["preprocessing"]["std"], np.float32
                                                                       ).reshape(1, 3, 1, 1).astype(np.float32)
    arrays["test_predictions"] = (arrays["test_predictions"] + 1) % 10  # forged reference decisions
    with open(golden, "wb") as fh:
        np.savez(fh, **arrays)
    data["golden"]["sha256"] = sha256_file(golden)
    _write_manifest(built_copy, data)
    result = invoke("verify", "--artifacts", built_copy, "--dataset", "synthetic")
    assert result.exit_code == 1
    assert "preprocessing differs from the reference checkpoint" in result.output
    assert "stored reference predictions differ from its checkpoint's" in result.output


@pytest.mark.parametrize("edit, fragment", [
    (lambda d: d.update(artifacts=[]), "at artifacts: [] should be non-empty"),
    (lambda d: d["artifacts"].append(dict(d["artifacts"][1])), "more than once"),
    (lambda d: d["artifacts"][1].update(details="x"), "at artifacts/1/details: 'x' is not of type 'object'"),
    (lambda d: d["artifacts"][1].update(name=["x"]), "at artifacts/1/name: ['x'] is not of type 'string'"),
    (lambda d: d["artifacts"][1].update(runtime=["x"]), "at artifacts/1/runtime"),
    (lambda d: d["artifacts"][1].update(sha256=5), "at artifacts/1/sha256: 5 is not of type 'string'"),
    (lambda d: d["golden"].update(count=0), "at golden/count"),
    (lambda d: d.update(classes="abc"), "at classes: 'abc' is not of type 'array'"),
    (lambda d: d["input"].update(shape=["batch", 3, 100000, 100000]), "out of range"),
])
def test_malformed_manifest_entries_are_exit_3(built_copy, edit, fragment):
    data = _manifest(built_copy)
    edit(data)
    _write_manifest(built_copy, data)
    _one_line(invoke("verify", "--artifacts", built_copy), 3, fragment)


def test_deeply_nested_json_is_one_line(built_copy):
    (built_copy / "report.json").write_text("[" * 100_000 + "]" * 100_000)
    assert invoke("verify", "--artifacts", built_copy).exit_code == 0  # an unreadable report is rewritten
    (built_copy / "manifest.json").write_text("[" * 100_000 + "]" * 100_000)
    _one_line(invoke("verify", "--artifacts", built_copy), 3, "nests too deeply")


def test_onnx_weights_in_an_external_file_are_refused(built_copy):
    import onnx

    proto = onnx.load(str(built_copy / "model.onnx"))
    onnx.save(proto, str(built_copy / "model.onnx"), save_as_external_data=True, all_tensors_to_one_file=True,
              location="weights.bin", size_threshold=0)
    _rehash(built_copy, "onnx")
    result = invoke("verify", "--artifacts", built_copy)
    assert result.exit_code == 1 and "self_contained" in result.output and "external files" in result.output


def test_an_unloadable_reference_is_exit_3_not_a_skip(built_copy):
    (built_copy / "checkpoint.pt").write_bytes(b"not a checkpoint at all")
    _rehash(built_copy, "pytorch")
    result = invoke("verify", "--artifacts", built_copy)
    _one_line(result, 3, "not a readable PyTorch checkpoint")
    assert "weights_only=False" not in result.output


def test_each_command_exits_on_its_own_checks_only(built_copy):
    report = json.loads((built_copy / "report.json").read_text())
    report["gate"] = [{"key": "onnx/onnxruntime/cpu/batch1", "status": "regressed", "detail": "p50 +50%"}]
    (built_copy / "report.json").write_text(json.dumps(report))
    assert invoke("verify", "--artifacts", built_copy).exit_code == 0
    report = json.loads((built_copy / "report.json").read_text())
    report["verify"][1]["status"] = "failed"
    (built_copy / "report.json").write_text(json.dumps(report))
    assert invoke("bench", "--artifacts", built_copy, "--batch", "1", "--processes", "1").exit_code == 0


@pytest.mark.parametrize("args, code, fragment", [
    (["--model", "byo_models:raises"], 2, "factory exploded"),
    (["--model", "byo_models:needs_argument"], 2, "TypeError"),
    (["--model", "byo_models:exits"], 2, "SystemExit"),
    (["--model", "byo_models:wrong_input"], 2, "check --input-shape"),
    (["--model", "no_such_module_here:make"], 2, "PYTHONPATH"),
    (["--model", "byo_models:tiny", "--input-shape", "3x100000x100000"], 2, "out of range"),
    (["--model", "byo_models:tiny", "--mean", "nan,nan,nan"], 2, "finite"),
    (["--model", "byo_models:tiny", "--std", "0,0,0"], 2, "must be positive"),
    (["--model", "byo_models:tiny", "--batch", "99999999999999999999"], 2, "out of range"),
    (["--model", "byo_models:ti\0ny"], 2, "NUL byte"),
])
def test_bad_build_inputs_are_one_line_before_anything_is_written(tmp_path, args, code, fragment):
    out = tmp_path / "out"
    cmd = ["build", *args, "--golden", "16", "--no-bench"]
    cmd += [] if "--input-shape" in args else ["--input-shape", "3x20x20"]
    cmd += [] if "--out" in args else ["--out", out]
    result = invoke(*cmd)
    _one_line(result, code, fragment)
    assert not (out / "manifest.json").exists()


@pytest.mark.parametrize("text, fragment", [
    ("[fp32]\nmax_abs = nan\n", "finite"),
    ("[fp32]\nmax_abs = 1e400\n", "finite"),
    ("[int8]\nmin_top1_agreement = 5\n", "fraction"),
    ("[onxx]\nmax_abs = 1e-3\n", "[onxx]"),
])
def test_meaningless_tolerances_are_usage_errors(built_copy, tmp_path, text, fragment):
    path = tmp_path / "t.toml"
    path.write_text(text)
    _one_line(invoke("verify", "--artifacts", built_copy, "--tolerances", path), 2, fragment)


def test_a_folder_as_tolerances_and_a_text_file_as_checkpoint_are_one_line(built_copy, tmp_path):
    _one_line(invoke("verify", "--artifacts", built_copy, "--tolerances", tmp_path), 2, "cannot be read")
    text = tmp_path / "notes.txt"
    text.write_text("hello")
    result = invoke("build", "--checkpoint", text, "--out", tmp_path / "o", "--dataset", "synthetic")
    _one_line(result, 3, "not a readable PyTorch checkpoint")
    assert "weights_only=False" not in result.output


def test_a_manifest_input_shape_that_no_graph_fits_is_seen(built_copy):
    from export_kit.folder.manifest import load_manifest
    from export_kit.verification.checks.onnx_graph import onnx_checks

    manifest = load_manifest(built_copy)
    manifest.inputs[0]["shape"] = ["batch", 3, 28, 28]
    contained, graph = onnx_checks(built_copy / "model.onnx", manifest.artifact("onnx"), manifest)
    assert contained.passed and not graph.passed and "does not fit the manifest" in graph.detail
    data = _manifest(built_copy)
    data["input"]["shape"] = ["batch", 3, 28, 28]
    _write_manifest(built_copy, data)
    _one_line(invoke("verify", "--artifacts", built_copy), 3, "'input' disagrees with the first of its 'inputs'")
    data["inputs"][0]["shape"] = ["batch", 3, 28, 28]  # consistent, and larger than the golden file holds
    _write_manifest(built_copy, data)
    _one_line(invoke("verify", "--artifacts", built_copy), 3, "its manifest shape allows")


def test_a_manifest_naming_an_unknown_runtime_is_a_bad_file_exit_3(built_copy):
    data = _manifest(built_copy)
    next(a for a in data["artifacts"] if a["name"] == "onnx")["runtime"] = "bogus"
    _write_manifest(built_copy, data)
    for command in ("verify", "bench"):
        _one_line(invoke(command, "--artifacts", built_copy, "--processes", "0") if command == "bench" else
                  invoke(command, "--artifacts", built_copy), 3, "names runtime 'bogus', which exportkit does not know")


def test_bench_times_only_files_that_match_the_manifest(built_copy):
    """The int8 TorchScript file copied over the fp32 one: verify fails integrity, and bench must not report the
    int8 file's latency as torchscript's."""
    (built_copy / "model.torchscript.pt").write_bytes((built_copy / "model.int8.torchscript.pt").read_bytes())
    result = invoke("bench", "--artifacts", built_copy, "--batch", "1", "--processes", "0", "--device", "cpu")
    assert result.exit_code == 1, result.output
    rows = {r["artifact"]: r for r in json.loads((built_copy / "report.json").read_text())["bench"]}
    assert rows["torchscript"]["status"] == "failed" and rows["torchscript"]["p50_ms"] is None
    assert "integrity: model.torchscript.pt" in rows["torchscript"]["reason"]
    assert rows["onnx"]["status"] == "passed"


def _fifo(path: Path) -> Path:
    os.mkfifo(path)
    return path


def test_fifos_devices_and_huge_numbers_are_one_line_refusals_never_hangs(built_copy, tmp_path):
    """Each would hang (a FIFO waits for a writer), exhaust memory (/dev/zero never ends) or raise a traceback (an
    integer past Python's 4,300-digit conversion limit); run as real processes with a timeout, so a hang fails."""
    (tmp_path / "huge.toml").write_text("[fp32]\nmax_abs = " + "9" * 400 + "\n")
    (tmp_path / "huger.toml").write_text("[fp32]\nmax_abs = " + "9" * 5000 + "\n")
    cases = [
        (["verify", "--artifacts", built_copy, "--trust-key", "/dev/zero"], 2, "not a regular file"),
        (["verify", "--artifacts", built_copy, "--trust-key", _fifo(tmp_path / "key.pub")], 2, "not a regular file"),
        (["verify", "--artifacts", built_copy, "--tolerances", _fifo(tmp_path / "tol.toml")], 2,
         "not a regular file"),
        (["verify", "--artifacts", built_copy, "--tolerances", tmp_path / "huge.toml"], 2,
         "must be a finite non-negative number"),
        (["verify", "--artifacts", built_copy, "--tolerances", tmp_path / "huger.toml"], 2, "not valid TOML"),
    ]
    for args, code, fragment in cases:
        done = subprocess.run([sys.executable, "-m", "export_kit", *map(str, args)], capture_output=True, text=True,
                              timeout=120)
        assert done.returncode == code and fragment in done.stderr, (args, done.stdout[-300:], done.stderr)
        assert "Traceback" not in done.stderr and len(done.stderr.strip().splitlines()) == 1, done.stderr
    (built_copy / "report.json").unlink()
    _fifo(built_copy / "report.json")  # read back after every check ran: now refused, and replaced by the new one
    done = subprocess.run([sys.executable, "-m", "export_kit", "verify", "--artifacts", str(built_copy)],
                          capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stdout[-2000:] + done.stderr
    assert json.loads((built_copy / "report.json").read_text())["verify"]
    data = _manifest(built_copy)
    data["artifacts"][1]["opset"] = int("7" * 4000)
    (built_copy / "manifest.json").write_text(json.dumps(data).replace("7" * 4000, "7" * 5000))
    done = subprocess.run([sys.executable, "-m", "export_kit", "verify", "--artifacts", str(built_copy)],
                          capture_output=True, text=True, timeout=120)
    assert done.returncode == 3 and "not valid JSON" in done.stderr and "Traceback" not in done.stderr, done.stderr


def test_entries_named_like_images_that_are_not_files_are_left_out_never_read(tmp_path):
    from conftest import write_image_folder

    data = tmp_path / "data"
    write_image_folder(data, ["a", "b"], per_class=2, size=8)
    (data / "test" / "a" / "dangling.jpg").symlink_to(tmp_path / "nowhere.jpg")
    (data / "test" / "a" / "loop.jpg").symlink_to(data / "test" / "a" / "loop.jpg")
    _fifo(data / "test" / "b" / "fifo.jpg")
    done = subprocess.run([sys.executable, "-c", "from export_kit.model.datasets import load_dataset; import sys; "
                           f"d = load_dataset('cifar10', {str(data)!r}, progress=False); print(len(d.test))"],
                          capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    assert "left out 3 entries named like images that are not regular files" in done.stdout
    assert done.stdout.split()[-1] == "4"


def test_a_golden_file_sized_by_its_own_manifest_is_refused_in_seconds(built_copy):
    """The manifest cannot vouch for the golden file's size: a count past the cap is refused, and a compressed
    file of zero rows whose count the manifest raised to match is refused by the bytes it really holds."""
    import time

    golden = built_copy / "golden.npz"
    with np.load(golden) as npz:
        arrays = {k: npz[k] for k in npz.files}
    data = _manifest(built_copy)
    data["golden"]["count"] = 100_000
    _write_manifest(built_copy, data)
    _one_line(invoke("verify", "--artifacts", built_copy), 3, "golden count must be 1 to 10000")
    count = 10_000  # the cap: 150 MB of rows declared in a file of under 2 MB
    rows = {k: np.zeros((count, *v.shape[1:]), v.dtype) for k, v in arrays.items()
            if k in ("images", "labels", "input_0", "output_0")}
    np.savez_compressed(golden, **{**arrays, **rows})
    assert golden.stat().st_size < 2 << 20
    data.update(golden={**data["golden"], "count": count, "sha256": sha256_file(golden)})
    _write_manifest(built_copy, data)
    started = time.monotonic()
    _one_line(invoke("verify", "--artifacts", built_copy), 3, "refused unread")
    assert time.monotonic() - started < 60


def test_output_shapes_in_a_manifest_are_bounded_like_input_shapes(built_copy):
    data = _manifest(built_copy)
    data["outputs"][0]["shape"] = ["batch", 1 << 20, 1 << 20]
    _write_manifest(built_copy, data)
    _one_line(invoke("verify", "--artifacts", built_copy), 3, "manifest output 'logits' shape dimension 1048576")
