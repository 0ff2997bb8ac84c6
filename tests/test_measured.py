"""Accuracy shown by a run without data comes from a signed record of a run that measured it, never from
report.json, which anyone who can edit the folder can edit."""

from __future__ import annotations

import json
import os
from pathlib import Path

import numpy as np
from test_cli import invoke

from export_kit.errors import EXIT_OK
from export_kit.folder.measured import RECORD_NAME, carry_over, write_record
from export_kit.model.datasets.base import Split
from export_kit.results import VerifyResult

ARTIFACTS = [{"name": "onnx", "sha256": "aa"}]


def _row(accuracy: float | None = None) -> VerifyResult:
    return VerifyResult("onnx", "onnx", "onnxruntime", "cpu", "fp32", accuracy=accuracy)


def _recorded(folder: Path) -> None:
    test = Split(np.zeros((3, 2, 2, 3), np.uint8), np.arange(3))
    write_record(folder, [_row(0.7)], ARTIFACTS, test)


def test_figures_carry_over_only_for_the_same_bytes_from_a_record_signed_by_a_trusted_key(tmp_path, monkeypatch):
    _recorded(tmp_path)
    rows = [_row()]
    assert carry_over(tmp_path, rows, ARTIFACTS) is None and rows[0].accuracy == 0.7
    local = (Path(os.environ["EXPORTKIT_HOME"]) / "signing_key.pub").read_text().split()[1]
    assert rows[0].accuracy_signed_by == local and rows[0].accuracy_measured
    rows = [_row()]
    assert carry_over(tmp_path, rows, [{"name": "onnx", "sha256": "bb"}]) is None and rows[0].accuracy is None

    record = json.loads((tmp_path / RECORD_NAME).read_text())
    record["rows"][0]["accuracy"] = 0.99
    (tmp_path / RECORD_NAME).write_text(json.dumps(record))
    rows = [_row()]
    assert "changed after signing" in carry_over(tmp_path, rows, ARTIFACTS) and rows[0].accuracy is None

    _recorded(tmp_path)  # signed again, then read on another machine: its key is not trusted there ...
    home = Path(os.environ["EXPORTKIT_HOME"])
    monkeypatch.setenv("EXPORTKIT_HOME", str(tmp_path / "elsewhere"))
    rows = [_row()]
    assert "not trusted here" in carry_over(tmp_path, rows, ARTIFACTS) and rows[0].accuracy is None
    rows = [_row()]  # ... until its signer is given
    assert carry_over(tmp_path, rows, ARTIFACTS, [home / "signing_key.pub"]) is None and rows[0].accuracy == 0.7


def test_a_forged_report_never_shows_an_accuracy_that_was_not_measured(built_copy):
    measured = {(r["artifact"], r["device"]): r["accuracy"]
                for r in json.loads((built_copy / RECORD_NAME).read_text())["rows"]}
    report = json.loads((built_copy / "report.json").read_text())
    for row in report["verify"]:
        row["accuracy"], row["accuracy_ci95"], row["accuracy_measured"] = 0.9912, "x", "yesterday"
    (built_copy / "report.json").write_text(json.dumps(report))
    result = invoke("verify", "--artifacts", built_copy)
    assert result.exit_code == EXIT_OK, result.output
    assert "0.9912" not in result.output and "carried over from" in result.output
    rows = json.loads((built_copy / "report.json").read_text())["verify"]
    shown = {(r["artifact"], r["device"]): r["accuracy"] for r in rows if r["accuracy"] is not None}
    assert shown == measured
    for name in ("report.md", "report.html"):
        assert "0.9912" not in (built_copy / name).read_text()

    forged = (built_copy / RECORD_NAME).read_text().replace('"accuracy": 0.', '"accuracy": 1.')
    (built_copy / RECORD_NAME).write_text(forged)
    result = invoke("verify", "--artifacts", built_copy)
    assert "accuracy of the last run with data not shown: the signature does not match accuracy.json" in result.output
    rows = json.loads((built_copy / "report.json").read_text())["verify"]
    assert all(r["accuracy"] is None for r in rows)
