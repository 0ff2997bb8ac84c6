"""Resource limits for input that may be hostile: checked before anything is decompressed, parsed or allocated.

A few kilobytes of zip can declare gigabytes; a JSON file can nest deeper than the parser's stack. Each check
reads only headers or sizes and raises the caller's one-line error class.
"""

from __future__ import annotations

import json
import os
import stat
import zipfile
from pathlib import Path
from typing import Any

from export_kit.errors import ExportKitError, ManifestError, UsageError

#: torch.save / jit.save / np.savez store entries uncompressed, so a real file inflates to about its own size.
ZIP_SLACK_BYTES = 64 << 20
ZIP_MAX_ENTRIES = 100_000
JSON_MAX_BYTES = 64 << 20
MAX_BATCH = 4096
#: Elements of one input sample (3x4096x4096 is 50 M); anything larger is a typo or an attack.
MAX_SAMPLE_ELEMENTS = 64 << 20
MAX_DIM = 1 << 16
#: Golden samples a folder may declare: build stores 250 by default; verify runs every one on every target, so a
#: forged count of 100,000 would be hours of work.
MAX_GOLDEN = 10_000
#: A public key, a signature, a tolerances file: a few hundred bytes each.
SMALL_FILE_BYTES = 1 << 20


def read_regular(path: Path, limit: int, error: type[ExportKitError], what: str = "") -> bytes:
    """The bytes of a regular file of at most ``limit`` bytes, or ``error`` in one line. Opened without blocking
    and checked on the open descriptor, so a FIFO (which would wait forever for a writer), a device (/dev/zero
    never ends) or a socket is refused before a byte is read, and no swap between check and read can change it."""
    name = f"{what} {path}".strip()
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK)
    except OSError as exc:
        raise error(f"{name} cannot be read: {exc.strerror}") from None
    info = os.fstat(fd)
    if not stat.S_ISREG(info.st_mode):
        os.close(fd)
        raise error(f"{name} cannot be read: it is not a regular file (a directory, FIFO, device or socket is "
                    "never read)")
    with os.fdopen(fd, "rb") as fh:
        if info.st_size > limit:
            raise error(f"{name} is {info.st_size:,} bytes, more than the {limit:,} such a file may have")
        data = fh.read(limit + 1)
    if len(data) > limit:
        raise error(f"{name} grew past {limit:,} bytes while being read")
    return data


def check_zip(path: Path, error: type[ExportKitError] = ManifestError) -> None:
    """Refuse a zip whose entries declare far more bytes than the file holds (a decompression bomb)."""
    if not zipfile.is_zipfile(path):
        return  # not a zip: the loader's own error applies
    try:
        with zipfile.ZipFile(path) as archive:
            entries = archive.infolist()
    except (zipfile.BadZipFile, OSError, ValueError) as exc:
        raise error(f"{path} is a damaged zip archive ({exc})") from None
    declared = sum(e.file_size for e in entries)
    limit = 2 * Path(path).stat().st_size + ZIP_SLACK_BYTES
    if len(entries) > ZIP_MAX_ENTRIES or declared > limit:
        raise error(f"{path} declares {declared:,} bytes in {len(entries):,} entries once unpacked, more than "
                    f"the {limit:,} a file of its size can honestly hold; refused unread")


def check_zip_entries(path: Path, limits: dict[str, int], error: type[ExportKitError] = ManifestError) -> None:
    """Refuse an archive whose named entries declare more bytes than their expected shapes allow."""
    try:
        with zipfile.ZipFile(path) as archive:
            sizes = {e.filename: e.file_size for e in archive.infolist()}
    except (zipfile.BadZipFile, OSError, ValueError) as exc:
        raise error(f"{path} is not a readable archive ({exc})") from None
    for name, size in sizes.items():
        limit = limits.get(name)
        if limit is None:
            raise error(f"{path} holds an unexpected entry {name!r}")
        if size > limit:
            raise error(f"{path} entry {name!r} declares {size:,} bytes, more than the {limit:,} its manifest "
                        "shape allows; refused unread")


def read_json(path: Path, error: type[ExportKitError] = ManifestError) -> Any:
    """Parse a JSON file of bounded size and nesting; every way it can be wrong is one ``error``."""
    try:
        return json.loads(read_regular(Path(path), JSON_MAX_BYTES, error).decode("utf-8"))
    except (UnicodeDecodeError, ValueError) as exc:  # ValueError: JSON errors, and integers of 4,300+ digits
        raise error(f"{path} is not valid JSON ({str(exc)[:200]}); rebuild the folder") from None
    except RecursionError:
        raise error(f"{path} nests too deeply to be a manifest or report") from None


def check_batch(batch: int) -> None:
    if not 0 < batch <= MAX_BATCH:
        raise UsageError(f"batch size {batch} is out of range: 1 to {MAX_BATCH}")


def check_sample_shape(shape: tuple[int, ...], what: str = "--input-shape",
                       error: type[ExportKitError] = UsageError) -> None:
    elements = 1
    for d in shape:
        if not 0 < d <= MAX_DIM:
            raise error(f"{what} dimension {d} is out of range: 1 to {MAX_DIM}")
        elements *= d
    if elements > MAX_SAMPLE_ELEMENTS:
        raise error(f"{what} {'x'.join(map(str, shape))} has {elements:,} elements per sample, more than "
                         f"{MAX_SAMPLE_ELEMENTS:,}")
