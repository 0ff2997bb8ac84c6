"""Hostile and broken artifacts folders, fuzzed manifests and command lines: errors, never crashes."""

import json
import os
import shutil
import signal
import subprocess
import sys
import time

import jsonschema
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from test_cli import invoke

from export_kit.errors import ExportKitError, ManifestError
from export_kit.folder.manifest import load_manifest, resolve_inside, schema


def _edit(folder, change):
    data = json.loads((folder / "manifest.json").read_text())
    change(data)
    (folder / "manifest.json").write_text(json.dumps(data))


@pytest.mark.parametrize("path", ["../outside.onnx", "/etc/passwd", "sub/../../x", ""])
def test_manifest_paths_outside_the_folder_are_refused(built_copy, path):
    _edit(built_copy, lambda d: d["artifacts"][1].update(path=path))
    result = invoke("verify", "--artifacts", built_copy)
    assert result.exit_code == 3 and "manifest path" in result.output


def test_a_symlink_out_of_the_folder_is_refused(built_copy, tmp_path):
    outside = tmp_path / "secret.onnx"
    outside.write_bytes(b"x")
    (built_copy / "link.onnx").symlink_to(outside)
    with pytest.raises(ManifestError, match="outside"):
        resolve_inside(built_copy, "link.onnx")


@pytest.mark.parametrize("text, fragment", [("{not json", "not valid JSON"), ("[1, 2]", "JSON object"),
                                            ('{"schema_version": 99}', "schema_version 99"),
                                            ('{"schema_version": 1}', "'input' is a required property")])
def test_malformed_manifests_are_one_line_errors(built_copy, text, fragment):
    (built_copy / "manifest.json").write_text(text)
    result = invoke("verify", "--artifacts", built_copy)
    assert result.exit_code == 3 and fragment in result.output and "Traceback" not in result.output


def test_a_missing_artifact_fails_its_row_and_unknown_files_are_ignored(built_copy):
    (built_copy / "model.torchscript.pt").unlink()
    (built_copy / "notes.txt").write_text("left by a user")
    result = invoke("verify", "--artifacts", built_copy)
    assert result.exit_code == 1
    assert "torchscript on torchscript/cpu: integrity" in result.output and "notes.txt" not in result.output


def test_a_killed_build_never_verifies_and_a_rerun_starts_clean(tmp_path, checkpoint):
    out = tmp_path / "art"
    cmd = [sys.executable, "-m", "export_kit", "build", "--checkpoint", str(checkpoint), "--out", str(out),
           "--dataset", "synthetic", "--no-bench"]
    proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.monotonic() + 60
    while not (out / "golden.npz").exists() and time.monotonic() < deadline:  # killed mid-export
        time.sleep(0.05)
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    assert not (out / "manifest.json").exists()
    assert invoke("verify", "--artifacts", out).exit_code == 3
    (out / ".golden.npz.partial-x1y2z3").write_bytes(b"half")  # what a kill mid-write leaves, whatever the timing
    assert subprocess.run(cmd, capture_output=True).returncode == 0
    assert invoke("verify", "--artifacts", out).exit_code == 0
    assert not [p for p in os.listdir(out) if ".partial-" in p]


json_values = st.recursive(st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(),
                           lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(), inner, max_size=4),
                           max_leaves=20)


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(mutation=st.dictionaries(st.sampled_from(["input", "output", "preprocessing", "classes", "artifacts",
                                                 "golden", "schema_version", "model", "failures"]), json_values,
                                min_size=1, max_size=3))
def test_fuzzed_manifests_raise_only_user_errors(built, tmp_path, mutation):
    data = json.loads((built[0] / "manifest.json").read_text())
    data.update(mutation)
    folder = tmp_path / "fuzz"
    folder.mkdir(exist_ok=True)
    (folder / "manifest.json").write_text(json.dumps(data))
    try:
        manifest = load_manifest(folder)
    except ExportKitError:
        return
    schema_errors = list(jsonschema.Draft202012Validator(schema()).iter_errors(data))
    assert not schema_errors, "a manifest was accepted that does not fit the schema"
    assert not list(jsonschema.Draft202012Validator(schema()).iter_errors(manifest.to_dict()))
    try:
        for art in manifest.artifacts:
            resolve_inside(folder, art.path)
    except ExportKitError:
        pass


words = st.sampled_from(["build", "verify", "bench", "train", "selftest", "--formats", "--batch", "--out",
                         "--artifacts", "--device", "--dataset", "--epochs", "--tolerances", "--input-shape",
                         "onnx,int8", "0", "-3", "x", "", "cuda", "synthetic", "3x2", "--help"])


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(argv=st.lists(words | st.text(max_size=8), max_size=6))
def test_fuzzed_command_lines_never_escape_as_unhandled_exceptions(tmp_path, monkeypatch, argv):
    monkeypatch.chdir(tmp_path)  # relative defaults (artifacts/, ./data) land in a scratch folder
    if argv[:1] in (["build"], ["train"]):  # those would train on real data; the parser path is what is fuzzed
        argv = [*argv, "--dataset", "none-such"]
    result = invoke(*argv)
    assert result.exception is None or isinstance(result.exception, SystemExit), repr(result.exception)


@settings(max_examples=100, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(field=st.sampled_from(["name", "format", "path", "runtime", "precision", "sha256", "bytes", "opset",
                              "details"]),
       value=json_values | st.integers(min_value=-2**70, max_value=2**70),
       golden=st.sampled_from(["count", "sha256", "path", "plain"]), golden_value=json_values)
def test_fuzzed_artifact_entries_and_golden_records_raise_only_user_errors(built, tmp_path, field, value, golden,
                                                                          golden_value):
    """Every reader of a manifest entry (the folder, golden vectors, per-artifact checks) meets mistyped fields
    with a user error, never an exception that escapes as a crash."""
    from export_kit.folder.load import ArtifactsFolder
    from export_kit.verification.checks import VerifyContext
    from export_kit.verification.run import artifact_checks

    data = json.loads((built[0] / "manifest.json").read_text())
    data["artifacts"][2][field] = value
    data["golden"][golden] = golden_value
    folder = tmp_path / "fuzz"
    if not folder.exists():
        shutil.copytree(built[0], folder)
    (folder / "manifest.json").write_text(json.dumps(data))
    try:
        loaded = ArtifactsFolder.load(folder)
        golden = loaded.golden_problem() or loaded.golden()
        for art in loaded.manifest.artifacts:
            artifact_checks(VerifyContext(loaded, golden), art)
    except ExportKitError:
        pass
