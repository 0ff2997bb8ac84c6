"""The shared build: what the folder holds, what the report says, and that verify and bench read only files."""

import json
import re
from pathlib import Path

from export_kit import api
from export_kit.folder.manifest import load_manifest
from export_kit.results import VerifyResult


def test_manifest_describes_inputs_preprocessing_classes_and_every_file(built):
    folder, _ = built
    m = json.loads((folder / "manifest.json").read_text())
    assert m["input"] == {"name": "input", "shape": ["batch", 3, 32, 32], "dtype": "float32", "layout": "NCHW"}
    assert m["inputs"] == [{**{k: v for k, v in m["input"].items() if k != "layout"},
                            "domain": m["inputs"][0]["domain"]}]
    mean, std = m["preprocessing"]["mean"], m["preprocessing"]["std"]
    assert m["inputs"][0]["domain"] == [min(-a / b for a, b in zip(mean, std, strict=True)),
                                        max((1 - a) / b for a, b in zip(mean, std, strict=True))]
    assert m["outputs"] == [{"name": "logits", "shape": ["batch", 10], "dtype": "float32", "classifier": True}]
    assert m["output"]["shape"] == ["batch", 10]
    assert set(m["preprocessing"]) >= {"color", "scale", "mean", "std"} and len(m["preprocessing"]["mean"]) == 3
    assert len(m["classes"]) == 10
    names = {a["name"] for a in m["artifacts"]}
    assert names == {"pytorch", "onnx", "torchscript", "int8-onnx", "int8-torchscript", "int8-static"}
    for art in m["artifacts"]:
        assert (folder / art["path"]).stat().st_size == art["bytes"] and len(art["sha256"]) == 64
    assert [a["opset"] for a in m["artifacts"] if a["name"] == "onnx"] == [18]


def test_every_artifact_verifies_on_cpu_and_cuda_rows_are_skipped_with_a_reason(built):
    folder, report = built
    assert report.passed, report.failures()
    rows = report.verify_rows()
    cpu = [r for r in rows if r.device == "cpu"]
    assert {r.artifact for r in cpu} == {a.name for a in load_manifest(folder).artifacts}
    assert all(r.status == "passed" for r in cpu)
    for r in cpu:
        names = {c["name"] for c in r.checks}
        assert {"integrity", "load", "parity_batch1", "parity_batch32", "accuracy", "preprocessing"} <= names
        assert r.accuracy is not None and r.top1_agreement is not None and r.cosine is not None
    for r in rows:
        if r.status == "skipped":
            assert r.reason


def test_report_json_has_the_documented_fields_and_round_trips(built):
    folder, _ = built
    data = json.loads((folder / "report.json").read_text())
    row = next(v for v in data["verify"] if v["artifact"] == "onnx" and v["device"] == "cpu")
    assert {"format", "runtime", "passed", "status", "max_abs_err", "p99_abs_err",
            "cosine", "top1_agreement", "accuracy"} <= set(row)
    assert row["passed"] is True
    assert VerifyResult.from_dict(row).to_dict() == row
    bench = [b for b in data["bench"] if b["status"] == "passed"]
    assert {"format", "runtime", "device", "batch", "p50_ms", "p90_ms", "p99_ms", "mean_ms",
            "throughput_per_s"} <= set(bench[0])
    assert {(b["artifact"], b["batch"]) for b in bench} >= {("pytorch", 1), ("onnx", 1), ("onnx", 4)}
    assert all(b["p50_ms"] <= b["p90_ms"] <= b["p99_ms"] for b in bench)
    assert data["environment"]["cpu_cores"] >= 1 and data["environment"]["torch"]
    assert "## Status per artifact" in (folder / "report.md").read_text()
    assert data["plots"] == ["classes.png", "latency.png", "latency_vs_batch.png"]
    assert all((folder / name).stat().st_size > 1000 for name in data["plots"])
    page = (folder / "report.html").read_text()
    assert page.count("data:image/png;base64,") == len(data["plots"]) and "<table>" in page
    assert not re.search(r"""(src|href)\s*=\s*["']?(https?:|//)""", page)  # nothing loads from elsewhere


def test_verify_alone_rereads_the_folder_and_keeps_the_bench_section_and_the_accuracy(built_copy):
    import os

    built = json.loads((built_copy / "report.json").read_text())
    record = json.loads((built_copy / "accuracy.json").read_text())
    report = api.verify(built_copy, None, log=lambda _: None)
    assert report.passed and report.created != built["created"]
    json_rows = {(r["artifact"], r["device"]): r for r in built["verify"] if r["accuracy"] is not None}
    kept = {(r.artifact, r.device): r for r in report.verify_rows() if r.accuracy is not None}
    assert kept.keys() == json_rows.keys() and kept
    local = (Path(os.environ["EXPORTKIT_HOME"]) / "signing_key.pub").read_text().split()[1]
    for key, row in kept.items():  # the figures of the run with data, marked with its time and signer, not re-judged
        assert row.accuracy == json_rows[key]["accuracy"] and row.accuracy_measured == record["measured"]
        assert row.accuracy_signed_by == local
        assert "accuracy" not in {c["name"] for c in row.checks}
    assert f"(carried over from {record['measured']}, signed by {local[:16]})" in (built_copy / "report.md").read_text()
    assert json.loads((built_copy / "report.json").read_text())["bench"] == built["bench"]


def test_a_format_that_fails_to_export_is_a_failed_row_and_the_others_still_build(tmp_path, checkpoint, synthetic,
                                                                                   monkeypatch):
    from conftest import build_folder

    from export_kit.exporters.base import EXPORTERS

    def broken(self, request):
        raise RuntimeError("unsupported operator aten::frobnicate")

    monkeypatch.setattr(EXPORTERS["torchscript"], "export", broken)
    report = build_folder(checkpoint, synthetic.test, tmp_path / "a", formats=("onnx", "torchscript"),
                          bench_batches=())
    assert not report.passed
    (failure,) = report.export_failures
    assert {k: failure[k] for k in ("format", "stage", "reason")} == {
        "format": "torchscript", "stage": "export", "reason": "RuntimeError: unsupported operator aten::frobnicate"}
    assert failure["details"].startswith("Traceback") and "in broken" in failure["details"]
    assert {a.name for a in load_manifest(tmp_path / "a").artifacts} == {"pytorch", "onnx"}
    assert "FAIL" in (tmp_path / "a" / "report.md").read_text()


class _TwoInputs(__import__("torch").nn.Module):
    """Two inputs and a submodule named ``meta``: torch's ONNX exporter fails on it (torch 2.14), with the reason
    only in the cause of its error, under a first line of advice."""

    def __init__(self) -> None:
        import torch

        super().__init__()
        self.meta = torch.nn.Linear(4, 4)

    def forward(self, a, b):
        return self.meta(a) + b


def test_an_export_failure_names_its_cause_and_keeps_the_whole_text(tmp_path):
    import torch

    example = {"a": torch.rand(2, 4), "b": torch.rand(2, 4)}
    report = api.build(_TwoInputs().eval(), example, formats=["onnx", "torchscript"], out=tmp_path / "f",
                       golden_count=8, bench_batches=(), log=lambda _: None)
    (failure,) = report.export_failures
    assert failure["format"] == "onnx" and "Next steps" not in failure["reason"]
    assert "references nonexistent attribute weight of meta" in failure["reason"], failure["reason"]
    assert "Next steps" in failure["details"] and "references nonexistent attribute" in failure["details"]
    markdown = (tmp_path / "f" / "report.md").read_text()
    assert "### Export of onnx, in full" in markdown and "Next steps" in markdown
    assert load_manifest(tmp_path / "f").failures[0]["details"] == failure["details"]


def test_the_meaningful_line_of_a_wrapped_error():
    from export_kit.errors import ExportError, meaningful_line

    try:
        try:
            raise KeyError("conv1.weight")
        except KeyError as inner:
            raise RuntimeError("Failed to convert. This is step 2/3. Next steps:\n- file an issue") from inner
    except RuntimeError as exc:
        assert meaningful_line(exc) == "KeyError: 'conv1.weight' (RuntimeError: Failed to convert.)"
    summary = RuntimeError("Failed at step 1. Next steps:\n- x\n\n## Exception summary\n\n"
                           "<class 'torch._dynamo.exc.UserError'>: data-dependent branch\n")
    assert meaningful_line(summary) == "UserError: data-dependent branch (RuntimeError: Failed at step 1.)"
    assert meaningful_line(ValueError("one line")) == "ValueError: one line"
    assert meaningful_line(ExportError("torch.export.export failed: x")) == "ExportError: torch.export.export failed: x"


def test_bench_keeps_the_verify_section_of_a_failing_report(built_copy):
    import json as _json

    manifest = _json.loads((built_copy / "manifest.json").read_text())
    manifest["preprocessing"]["std"][0] *= 2
    (built_copy / "manifest.json").write_text(_json.dumps(manifest))
    failing = api.verify(built_copy, None, log=lambda _: None)
    assert not failing.passed
    from export_kit.benchmark.sampling import SamplingConfig

    after = api.bench(built_copy, [1], devices=("cpu",), config=SamplingConfig(processes=0), log=lambda _: None)
    assert len(after.verify) == len(failing.verify) and not after.passed


def test_the_library_logs_plain_text_without_terminal_markup(built_copy):
    from export_kit import api

    lines: list[str] = []
    api.verify(built_copy, log=lines.append)
    assert lines and all("[/" not in line and "[green" not in line and "[red" not in line for line in lines)
    onnx = next(line for line in lines if line.startswith("verify onnx on onnxruntime/cpu: pass"))
    assert re.fullmatch(r"verify onnx on onnxruntime/cpu: pass \(max abs err [0-9.e+-]+, top-1 agreement 1\.0000\)",
                        onnx), onnx  # no data given: no accuracy


def test_a_built_manifest_fits_the_published_schema(built):
    import json

    import jsonschema

    from export_kit.folder.manifest import SCHEMA_PATH, SCHEMA_VERSION, schema

    jsonschema.Draft202012Validator(schema()).validate(json.loads((built[0] / "manifest.json").read_text()))
    assert SCHEMA_PATH.name == f"manifest-v{SCHEMA_VERSION}.schema.json"
    assert schema()["properties"]["schema_version"] == {"const": SCHEMA_VERSION}


def test_artifacts_readme_names_every_file_a_build_writes(built):
    """artifacts/README.md is what users read to know a folder; a file a build writes and it omits is a gap."""
    import re
    from pathlib import Path

    readme = (Path(__file__).resolve().parents[1] / "artifacts" / "README.md").read_text()
    listed = {name.rstrip("/") for row in readme.splitlines() if row.startswith("| `")
              for name in re.findall(r"`([^`]+)`", row.split("|")[1])}
    assert {p.name for p in built[0].iterdir()} <= listed
