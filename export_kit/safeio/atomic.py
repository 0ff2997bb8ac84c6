"""Writing files so that an interrupted run never leaves a complete-looking, half-written file behind, and a
folder from elsewhere cannot redirect a write: every file exportkit writes goes through :func:`atomic_path`."""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

from export_kit.errors import UnsafeWriteError

#: In every temporary file's name, so a rerun can remove what a killed run left.
PARTIAL_MARK = ".partial-"
#: mkstemp makes files 0600; written files get the usual mode, as ``open(..., "w")`` would give them.
_UMASK = os.umask(0)
os.umask(_UMASK)


@contextlib.contextmanager
def atomic_path(final: Path, mode: int | None = None) -> Iterator[Path]:
    """Yield a fresh temporary sibling of ``final``; rename it into place only if the block finishes.

    ``final`` must not be a symlink (a planted link would otherwise aim the write elsewhere), and the temporary
    file is created exclusively, so a link planted under its name is never followed either. It is created 0600;
    ``mode`` (a private key's 0600) is set before anything is written, so no moment exposes what follows, else
    the umask's usual mode is.
    """
    final = Path(final)
    if final.is_symlink():
        raise UnsafeWriteError(f"refusing to write {final}: it is a symbolic link (remove it, or write elsewhere with "
                         "--report-dir)")
    final.parent.mkdir(parents=True, exist_ok=True)
    fd, name = tempfile.mkstemp(prefix=f".{final.name}{PARTIAL_MARK}", dir=final.parent)
    os.close(fd)
    tmp = Path(name)
    tmp.chmod(mode if mode is not None else 0o666 & ~_UMASK)
    try:
        yield tmp
        os.replace(tmp, final)
    finally:
        with contextlib.suppress(FileNotFoundError):
            tmp.unlink()


def write_text(final: Path, text: str) -> None:
    with atomic_path(final) as tmp:
        tmp.write_text(text, encoding="utf-8")


def write_json(final: Path, data: object) -> None:
    write_text(final, json.dumps(data, indent=2, sort_keys=False) + "\n")


def sha256_file(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


@contextlib.contextmanager
def stopwatch(into: dict[str, float], name: str) -> Iterator[None]:
    """Add the wall time of the block to ``into[name]`` (seconds), for per-stage timings in the report."""
    start = time.perf_counter()
    try:
        yield
    finally:
        into[name] = into.get(name, 0.0) + time.perf_counter() - start
