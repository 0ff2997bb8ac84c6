"""The conversation with an agent: start its transport, stream its source, then one request and one reply at a
time, each with a deadline. A target that does not answer in time, closes the connection, or sends a frame that
breaks the protocol ends as a :class:`TargetError` with one line saying which, never a hang or a traceback."""

from __future__ import annotations

import contextlib
import io
import json
import os
import select
import struct
import subprocess
import tempfile
import time
from pathlib import Path

import numpy as np

from export_kit.errors import ExportKitError, UnavailableError
from export_kit.targets.spec import TargetSpec

AGENT = Path(__file__).with_name("agent.py")
MAX_HEADER = 1 << 20
#: The largest array a target may send back: a reply is data from elsewhere, bounded before it is read.
MAX_ARRAY = 1 << 30


class TargetError(ExportKitError):
    """A target that could not be reached, stopped answering, or broke the protocol."""

    exit_code = UnavailableError.exit_code


def to_npy(array: np.ndarray) -> bytes:
    buffer = io.BytesIO()
    np.save(buffer, np.ascontiguousarray(array), allow_pickle=False)
    return buffer.getvalue()


def from_npy(blob: bytes) -> np.ndarray:
    try:
        return np.load(io.BytesIO(blob), allow_pickle=False)
    except Exception as exc:  # numpy raises several kinds for a malformed file
        raise TargetError(f"the target sent an array that is not a plain .npy ({type(exc).__name__})") from None


class Channel:
    """One agent process on ``spec``; ``timeout`` bounds every step (the first, which starts it, included)."""

    def __init__(self, spec: TargetSpec, timeout: float = 120.0) -> None:
        self.spec, self.timeout = spec, timeout
        self._stderr = tempfile.TemporaryFile()  # noqa: SIM115 - kept open as long as the process writing it
        try:
            self._proc = subprocess.Popen(spec.argv(min(timeout, 30.0)), stdin=subprocess.PIPE,
                                          stdout=subprocess.PIPE, stderr=self._stderr)
        except OSError as exc:
            raise TargetError(f"target {spec}: cannot start {spec.argv(1)[0]}: {exc.strerror}") from None
        os.set_blocking(self._proc.stdin.fileno(), False)
        source = AGENT.read_bytes()
        self._write(f"{len(source)}\n".encode() + source)
        self.fingerprint = self.request({"op": "hello"})[0]["fingerprint"]

    def request(self, header: dict, blobs: list[bytes] = ()) -> tuple[dict, list[bytes]]:
        """Send one request; its reply, or TargetError with the agent's own one-line reason."""
        data = json.dumps(dict(header, blobs=len(blobs))).encode()
        self._write(struct.pack(">I", len(data)) + data)
        for blob in blobs:
            self._write(struct.pack(">Q", len(blob)) + blob)
        reply, out = self._read_frame()
        if not reply.get("ok"):
            raise TargetError(f"target {self.spec}: {str(reply.get('error', 'failed'))[:300]}")
        return reply, out

    def close(self) -> None:
        if self._proc.poll() is None:
            with contextlib.suppress(TargetError):
                self.request({"op": "bye"})
            try:
                self._proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self._proc.kill()
                self._proc.wait()
        self._stderr.close()

    def __enter__(self) -> Channel:
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def _why(self, what: str) -> TargetError:
        """What went wrong, with the transport's last line (ssh's or the interpreter's) when it left one."""
        if self._proc.poll() is None:
            self._proc.kill()
            self._proc.wait()
        self._stderr.seek(0)
        lines = [ln for ln in self._stderr.read()[-4000:].decode(errors="replace").splitlines() if ln.strip()]
        return TargetError(f"target {self.spec}: {what}" + (f" ({lines[-1].strip()[:300]})" if lines else ""))

    def _write(self, data: bytes) -> None:
        deadline, view, fd = time.monotonic() + self.timeout, memoryview(data), self._proc.stdin.fileno()
        while view:
            left = deadline - time.monotonic()
            if left <= 0:
                raise self._why(f"did not take a request within {self.timeout:.0f} s")
            if not select.select([], [fd], [], left)[1]:
                continue
            try:
                view = view[os.write(fd, view[: 1 << 20]):]
            except BlockingIOError:
                continue
            except (BrokenPipeError, OSError):
                raise self._why("closed the connection") from None

    def _read(self, n: int, deadline: float) -> bytes:
        chunks, got, fd = [], 0, self._proc.stdout.fileno()
        while got < n:
            left = deadline - time.monotonic()
            if left <= 0:
                raise self._why(f"did not answer within {self.timeout:.0f} s")
            if not select.select([fd], [], [], left)[0]:
                continue
            chunk = os.read(fd, min(n - got, 1 << 20))
            if not chunk:
                raise self._why("closed the connection")
            chunks.append(chunk)
            got += len(chunk)
        return b"".join(chunks)

    def _read_frame(self) -> tuple[dict, list[bytes]]:
        deadline = time.monotonic() + self.timeout
        (size,) = struct.unpack(">I", self._read(4, deadline))
        if size > MAX_HEADER:
            raise self._why(f"sent a reply header of {size} bytes (the limit is {MAX_HEADER})")
        try:
            header = json.loads(self._read(size, deadline))
            count = int(header.get("blobs", 0))
        except (ValueError, AttributeError, TypeError):
            raise self._why("sent a reply that is not the agent's protocol") from None
        if not 0 <= count <= 64:
            raise self._why(f"announced {count} arrays in one reply")
        blobs = []
        for _ in range(count):
            (n,) = struct.unpack(">Q", self._read(8, deadline))
            if n > MAX_ARRAY:
                raise self._why(f"announced an array of {n} bytes (the limit is {MAX_ARRAY})")
            blobs.append(self._read(n, deadline))
        return header, blobs
