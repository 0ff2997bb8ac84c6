"""The program exportkit streams to a target and runs there: stdlib, numpy and the runtime's own module, nothing of
exportkit. It must stay importable on its own (no export_kit import), because it is sent as source text.

It speaks frames on stdin/stdout: a 4-byte big-endian length, a JSON header, then for each array the header
announces an 8-byte length and the array as .npy bytes (never pickles). One request, one reply:

- ``hello``: the device's fingerprint and which runtimes import here.
- ``have {sha256}``: whether the content-addressed cache holds that file; ``put {sha256}`` + bytes stores it after
  checking the digest, so a rerun uploads nothing.
- ``open {runtime, sha256, inputs, outputs, threads}``: load the cached file (its digest checked again first).
- ``run`` + one array per input: the outputs, and the seconds the call took on the target (for timing there;
  verify reads only the outputs).
- ``bye``: close; the work directory is removed.

Any error is a reply ``{"ok": false, "error": one line}``; the agent keeps serving.
"""

import hashlib
import io
import json
import os
import platform
import shutil
import struct
import sys
import tempfile
import time

MAX_HEADER = 1 << 20
MAX_ARRAY = 1 << 31


def read_exact(stream, n):
    data = stream.read(n)
    if data is None or len(data) != n:
        raise EOFError("the connection closed mid-frame")
    return data


def read_frame(stream):
    (size,) = struct.unpack(">I", read_exact(stream, 4))
    if size > MAX_HEADER:
        raise ValueError("frame header too large")
    header = json.loads(read_exact(stream, size))
    blobs = []
    for _ in range(int(header.get("blobs", 0))):
        (n,) = struct.unpack(">Q", read_exact(stream, 8))
        if n > MAX_ARRAY:
            raise ValueError("frame payload too large")
        blobs.append(read_exact(stream, n))
    return header, blobs


def write_frame(stream, header, blobs=()):
    header = dict(header, blobs=len(blobs))
    data = json.dumps(header).encode()
    stream.write(struct.pack(">I", len(data)) + data)
    for blob in blobs:
        stream.write(struct.pack(">Q", len(blob)))
        stream.write(blob)
    stream.flush()


def to_npy(array):
    import numpy as np

    buffer = io.BytesIO()
    np.save(buffer, np.ascontiguousarray(array), allow_pickle=False)
    return buffer.getvalue()


def from_npy(blob):
    import numpy as np

    return np.load(io.BytesIO(blob), allow_pickle=False)


def cpu_model():
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                key = line.split(":", 1)[0].strip().lower()
                if key in ("model name", "cpu model", "hardware"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def cpu_flags():
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.split(":", 1)[0].strip().lower() in ("flags", "features"):
                    return sorted(line.split(":", 1)[1].split())
    except OSError:
        pass
    return []


def emulated():
    """qemu-user shows a process its own /proc/self as the guest program's, but not its ancestors': the shell
    or sshd that started the agent runs under the same emulator, and its executable is qemu's. A real board shows
    no qemu among them."""
    pid = os.getppid()
    for _ in range(4):
        try:
            if os.path.basename(os.readlink(f"/proc/{pid}/exe")).startswith("qemu-"):
                return True
            with open(f"/proc/{pid}/stat") as f:
                pid = int(f.read().rsplit(")", 1)[1].split()[1])
        except (OSError, ValueError, IndexError):
            return False
        if pid <= 1:
            return False
    return False


RUNTIMES = {"onnxruntime": "onnxruntime", "onnxruntime-mobile": "onnxruntime"}


def runtime_versions():
    found = {}
    for runtime, module in RUNTIMES.items():
        try:
            found[runtime] = __import__(module).__version__
        except Exception as exc:  # a broken install is reported, not fatal
            found[runtime] = None
            found[runtime + ":why"] = (str(exc).splitlines() or [type(exc).__name__])[0]
    return found


def fingerprint():
    import numpy

    return {"machine": platform.machine(), "cpu": cpu_model(), "cpu_flags": cpu_flags(),
            "cpu_cores": os.cpu_count(), "os": platform.platform(), "python": platform.python_version(),
            "numpy": numpy.__version__, "emulated": emulated(), "runtimes": runtime_versions()}


class OnnxSession:
    def __init__(self, path, inputs, outputs, threads):
        import onnxruntime as ort

        options = ort.SessionOptions()
        if threads:
            options.intra_op_num_threads = int(threads)
        self.session = ort.InferenceSession(path, options, providers=["CPUExecutionProvider"])
        self.inputs, self.outputs = inputs, outputs

    def run(self, arrays):
        if len(arrays) != len(self.inputs):
            raise ValueError(f"expected {len(self.inputs)} inputs, got {len(arrays)}")
        return self.session.run(self.outputs, {name: arrays[i] for i, name in enumerate(self.inputs)})


OPENERS = {"onnxruntime": OnnxSession, "onnxruntime-mobile": OnnxSession}


def sha256_of(path):
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


class Agent:
    def __init__(self, cache):
        self.cache = cache
        os.makedirs(cache, mode=0o700, exist_ok=True)
        self.work = tempfile.mkdtemp(prefix="exportkit-agent-")
        self.session = None

    def cached(self, digest):
        if len(digest) != 64 or any(c not in "0123456789abcdef" for c in digest):
            raise ValueError("a sha256 is 64 hex digits")
        return os.path.join(self.cache, digest)

    def handle(self, header, blobs):
        op = header.get("op")
        if op == "hello":
            return {"fingerprint": fingerprint()}, []
        if op == "have":
            path = self.cached(header["sha256"])
            return {"have": os.path.isfile(path) and sha256_of(path) == header["sha256"]}, []
        if op == "put":
            path = self.cached(header["sha256"])
            if hashlib.sha256(blobs[0]).hexdigest() != header["sha256"]:
                raise ValueError("the bytes received do not match their sha256")
            partial = os.path.join(self.work, header["sha256"])
            with open(partial, "wb") as f:
                f.write(blobs[0])
            os.replace(partial, path)
            return {}, []
        if op == "open":
            path = self.cached(header["sha256"])
            if not os.path.isfile(path) or sha256_of(path) != header["sha256"]:
                raise ValueError("the cached file does not match its sha256; upload it again")
            if header["runtime"] not in OPENERS:
                raise ValueError("this agent cannot run " + header["runtime"])
            self.session = OPENERS[header["runtime"]](path, header["inputs"], header["outputs"],
                                                      header.get("threads"))
            return {}, []
        if op == "run":
            if self.session is None:
                raise ValueError("nothing is open")
            arrays = [from_npy(b) for b in blobs]
            start = time.perf_counter()
            outputs = self.session.run(arrays)
            seconds = time.perf_counter() - start
            return {"seconds": seconds}, [to_npy(o) for o in outputs]
        raise ValueError("unknown request " + repr(op))

    def serve(self, stdin, stdout):
        try:
            while True:
                try:
                    header, blobs = read_frame(stdin)
                except EOFError:
                    return
                if header.get("op") == "bye":
                    write_frame(stdout, {"ok": True})
                    return
                try:
                    reply, out = self.handle(header, blobs)
                    write_frame(stdout, dict(reply, ok=True), out)
                except Exception as exc:  # every failure goes back as one line
                    line = (str(exc).splitlines() or [""])[0]
                    write_frame(stdout, {"ok": False, "error": (type(exc).__name__ + ": " + line)[:500]})
        finally:
            shutil.rmtree(self.work, ignore_errors=True)


def main():
    cache = os.environ.get("EXPORTKIT_AGENT_CACHE") or os.path.join(
        os.path.expanduser("~"), ".cache", "exportkit-agent")
    # frames own the real stdout; anything a library prints goes to stderr instead of corrupting them
    frames = os.fdopen(os.dup(1), "wb")
    os.dup2(2, 1)
    Agent(cache).serve(sys.stdin.buffer, frames)


if __name__ == "__main__":
    main()
