"""A/B: onnxruntime with and without the runner's IO binding, on the ONNX artifacts of a built folder.

    python examples/io_binding_ab.py artifacts/

Runs each variant twice, alternating, and prints the median per-call latency of each run in microseconds.
"""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np

from export_kit.bench import BenchConfig, threads_for, time_runner
from export_kit.folder import ArtifactsFolder
from export_kit.runners.base import Target
from export_kit.runners.ort_runner import OrtRunner


class PlainRunner(OrtRunner):
    """The same session with IO binding switched off at every batch size."""

    def _run(self, batch: np.ndarray) -> np.ndarray:
        return self.session.run(None, {self._input: batch})[0]


def main() -> None:
    folder = ArtifactsFolder.load(Path(sys.argv[1] if len(sys.argv) > 1 else "artifacts"))
    inputs = folder.golden().inputs
    cfg = BenchConfig(warmup_s=0.3, min_iters=200, min_time_s=1.0, rounds=3)
    for art in (a for a in folder.manifest.artifacts if a.runtime == "onnxruntime"):
        for batch in (1, 32):
            results: dict[str, list[float]] = {"plain": [], "runner": []}
            for name in ("plain", "runner", "plain", "runner"):
                cls = PlainRunner if name == "plain" else OrtRunner
                runner = cls(Target("onnxruntime", "cpu"), folder.input_shape, threads_for(batch),
                             path=str(folder.file(art)))
                results[name].append(float(np.median(np.concatenate(time_runner(runner, inputs[:batch], cfg)))))
            print(f"{art.name:12s} batch {batch:3d}: " + ", ".join(
                f"{k} {' / '.join(f'{v * 1000:.1f}' for v in vs)} us" for k, vs in results.items()))


if __name__ == "__main__":
    main()
