"""How a command may use an artifacts folder: what it trusts there, and where it may write its report.

Checked before any work starts, so a folder that cannot take the report (read-only, or with a report file
replaced by a symbolic link) is a one-line error up front, not a crash after every check has run.
"""

from __future__ import annotations

import os
import tempfile
from dataclasses import dataclass
from pathlib import Path

from export_kit.errors import UnsafeWriteError, UsageError
from export_kit.folder.layout import BATCH_PNG, CLASSES_PNG, LATENCY_PNG, REPORT_HTML, REPORT_JSON, REPORT_MD
from export_kit.folder.load import ArtifactsFolder

REPORT_FILES = (REPORT_JSON, REPORT_MD, REPORT_HTML, CLASSES_PNG, LATENCY_PNG, BATCH_PNG)


@dataclass(frozen=True)
class Access:
    """Public keys whose signatures the user trusts, ``trust_code`` to load code-bearing files regardless,
    factories a checkpoint may name beyond the training stage's, and the folder for the report (default: the
    artifacts folder itself)."""

    trust_keys: tuple[Path, ...] = ()
    trust_code: bool = False
    factories: tuple[str, ...] = ()
    report_dir: Path | None = None


def check_report_dir(path: Path, option: str = "--report-dir") -> Path:
    """``path`` can take the report: creatable, writable, and no report file there is a symbolic link."""
    path = Path(path)
    try:
        path.mkdir(parents=True, exist_ok=True)
        fd, probe = tempfile.mkstemp(prefix=".exportkit-write-test-", dir=path)
        os.close(fd)
        os.unlink(probe)
    except OSError as exc:
        raise UsageError(f"{path} is not writable ({exc.strerror}); write the report elsewhere with "
                         f"{option} DIR") from None
    for name in REPORT_FILES:
        if (path / name).is_symlink():
            raise UnsafeWriteError(f"{path / name} is a symbolic link; exportkit never writes through one "
                                   f"(remove it, or write the report elsewhere with {option} DIR)")
    return path


def open_folder(path: Path, access: Access | None = None, *, writes: bool = True) -> tuple[ArtifactsFolder, Path]:
    """The folder with the trust it earned, and the directory its report goes to (checked when ``writes``)."""
    from export_kit.folder.signing import folder_trust

    access = access or Access()
    folder = ArtifactsFolder.load(Path(path))
    folder.trust = folder_trust(folder.path, folder.manifest, trust_keys=access.trust_keys,
                                trust_code=access.trust_code, factories=access.factories)
    report_dir = access.report_dir or folder.path
    return folder, check_report_dir(report_dir) if writes else report_dir
