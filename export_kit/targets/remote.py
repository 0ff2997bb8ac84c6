"""A runner whose runtime lives on a target: the artifact goes to the agent's content-addressed cache (uploaded
only when the target lacks those bytes), each batch goes over as .npy and comes back as .npy, read here without
pickles and checked against what the model declares. To verify it is one more :class:`Runner`, so every check
runs on the target exactly as it runs here."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from export_kit.runners.base import IOSpec, Runner, Target
from export_kit.safeio.atomic import sha256_file
from export_kit.targets.channel import Channel, TargetError, from_npy, to_npy

#: The runtimes the agent can open: formats whose files hold no code (the trust rules of code-bearing formats
#: would have to hold on the target too, and the agent implements none of them yet).
AGENT_RUNTIMES = ("onnxruntime", "onnxruntime-mobile")


def device_label(name: str, fingerprint: dict) -> str:
    """How a target's rows name their device: the target's name and its machine, and so when it is emulated."""
    machine = str(fingerprint.get("machine", "?"))[:32]
    return f"{name} ({machine}{', emulated' if fingerprint.get('emulated') else ''})"


def upload(channel: Channel, path: Path) -> str:
    """Put ``path`` in the target's cache unless it already holds those bytes; returns its sha256."""
    digest = sha256_file(path)
    if not channel.request({"op": "have", "sha256": digest})[0].get("have"):
        channel.request({"op": "put", "sha256": digest}, [path.read_bytes()])
    return digest


@dataclass
class RemoteRunner(Runner):
    channel: Channel | None = field(default=None, repr=False)

    def _run(self, inputs: list[np.ndarray]) -> Sequence[np.ndarray]:
        _, blobs = self.channel.request({"op": "run"}, [to_npy(a) for a in inputs])
        if len(blobs) != len(self.io.outputs):
            raise TargetError(f"target {self.channel.spec} returned {len(blobs)} outputs; the manifest names "
                              f"{len(self.io.outputs)}")
        outputs = [from_npy(b) for b in blobs]
        batch = len(inputs[0])
        for name, out in zip(self.io.outputs, outputs, strict=True):
            if out.dtype.kind not in "fiub" or out.ndim == 0 or out.shape[0] != batch:
                raise TargetError(f"target {self.channel.spec} returned {name} as {out.dtype} {out.shape} for a "
                                  f"batch of {batch}")
        return outputs

    def close(self) -> None:
        """The channel outlives the runner: one agent serves every artifact of its target."""


def open_remote(channel: Channel, runtime: str, path: Path, io: IOSpec, label: str,
                threads: int | None = None) -> RemoteRunner:
    digest = upload(channel, path)
    channel.request({"op": "open", "runtime": runtime, "sha256": digest, "threads": threads,
                     "inputs": [s.name for s in io.inputs], "outputs": list(io.outputs)})
    return RemoteRunner(Target(runtime, label), io, threads=threads, channel=channel)
