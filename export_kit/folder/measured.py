"""A signed record of the accuracy a verify run measured, so that a later run without data can show it again.

report.json is not signed: whoever can edit the folder can edit it, so a figure read back from it would be a figure
nobody measured. A verify run with data therefore also writes ``accuracy.json`` (each row's accuracy figures, the
sha256 of the file they were measured on, and the digest of the test set) and signs its exact bytes with this
machine's key into ``accuracy.sig``. A run without data carries a row's figures over only from a record signed by
a trusted key (this machine's, or one given with ``--trust-key``), only for a file whose bytes have not changed,
and marks them with the date and the signer; carried figures take no part in pass or fail.
"""

from __future__ import annotations

import hashlib
import time
from collections.abc import Sequence
from pathlib import Path

from export_kit.errors import ExportKitError
from export_kit.results import VerifyResult
from export_kit.safeio.atomic import write_json
from export_kit.safeio.limits import read_json

RECORD_NAME = "accuracy.json"
RECORD_SIG = "accuracy.sig"
FIELDS = ("accuracy", "reference_accuracy", "accuracy_ci95", "mcnemar", "per_class_delta", "class_metrics")
CHUNK = 1024


def test_digest(test) -> str:
    """sha256 over the test split's labels and pixels, read a chunk of rows at a time (the split may be a
    memory-mapped cache far larger than memory)."""
    digest = hashlib.sha256(test.labels.tobytes())
    for start in range(0, len(test), CHUNK):
        digest.update(test.rows(start, min(start + CHUNK, len(test))).tobytes())
    return digest.hexdigest()


def _digests(artifacts: Sequence[dict]) -> dict[str, str | None]:
    return {a["name"]: a.get("sha256") for a in artifacts}


def write_record(report_dir: Path, rows: Sequence[VerifyResult], artifacts: Sequence[dict], test) -> None:
    """Record and sign the accuracy figures of ``rows`` measured just now on ``test``."""
    from export_kit.folder.signing import sign_file

    digest = _digests(artifacts)
    entries = [{"artifact": r.artifact, "runtime": r.runtime, "device": r.device, "sha256": digest.get(r.artifact),
                **{name: getattr(r, name) for name in FIELDS}} for r in rows if r.accuracy is not None]
    record = {"measured": time.strftime("%Y-%m-%dT%H:%M:%S%z"), "test_set": {"images": len(test),
              "sha256": test_digest(test)}, "rows": entries}
    write_json(Path(report_dir) / RECORD_NAME, record)
    sign_file(Path(report_dir) / RECORD_NAME, Path(report_dir) / RECORD_SIG)


def carry_over(report_dir: Path, rows: Sequence[VerifyResult], artifacts: Sequence[dict],
               trust_keys: Sequence[Path] = ()) -> str | None:
    """Fill the accuracy of each row that has none from the signed record, where the record is signed by a
    trusted key and names the same file bytes. Returns why nothing could be carried over, or None."""
    from export_kit.folder.signing import signer_of, trusted_keys

    path = Path(report_dir) / RECORD_NAME
    if not path.is_file():
        return None
    signer, problem = signer_of(path, Path(report_dir) / RECORD_SIG, trusted_keys(trust_keys, report_dir),
                                RECORD_NAME)
    if problem:
        return problem
    try:
        record = read_json(path)
        earlier = {(e["artifact"], e["runtime"], e["device"], e["sha256"]): e for e in record["rows"]}
        measured = str(record["measured"])
    except (ExportKitError, KeyError, TypeError) as exc:
        return f"{RECORD_NAME} is signed but malformed ({type(exc).__name__})"
    digest = _digests(artifacts)
    for row in rows:
        entry = earlier.get((row.artifact, row.runtime, row.device, digest.get(row.artifact)))
        if row.accuracy is None and entry is not None:
            for name in FIELDS:
                setattr(row, name, entry.get(name))
            row.accuracy_measured, row.accuracy_signed_by = measured, signer
    return None


def carried_note(row: VerifyResult) -> str:
    """How a carried-over figure is labelled wherever it is shown; empty for a figure measured in this run."""
    if not row.accuracy_measured:
        return ""
    return f"carried over from {row.accuracy_measured}, signed by {(row.accuracy_signed_by or '?')[:16]}"
