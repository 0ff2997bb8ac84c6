"""A/B of two onnxruntime session choices, on the ONNX artifacts of a built folder.

    python examples/ort_session_ab.py artifacts/

1. IO binding: each variant runs twice, alternating; prints the median per-call latency of each run.
2. Offline graph optimization: session start-up and steady per-call latency of the model optimized at load time
   (what the runner does) against a copy saved already optimized and loaded with optimization off.
"""

from __future__ import annotations

import sys
import tempfile
import time
from pathlib import Path

import numpy as np

from export_kit.benchmark.run import threads_for
from export_kit.benchmark.sampling import SamplingConfig, time_slice
from export_kit.folder.load import ArtifactsFolder
from export_kit.runners.base import Target
from export_kit.runners.ort_runner import OrtRunner


class PlainRunner(OrtRunner):
    """The same session with IO binding switched off at every batch size."""

    def _run(self, inputs: list[np.ndarray]) -> list[np.ndarray]:
        return self.session.run(None, dict(zip(self._inputs, inputs, strict=True)))


def offline_optimization(path: Path, single: np.ndarray) -> None:
    import onnxruntime as ort

    def session(model: str, level, save: str | None = None):
        opts = ort.SessionOptions()
        opts.graph_optimization_level, opts.intra_op_num_threads, opts.log_severity_level = level, 1, 3
        if save:
            opts.optimized_model_filepath = save
        return ort.InferenceSession(model, opts, providers=["CPUExecutionProvider"])

    with tempfile.TemporaryDirectory() as work:
        saved = str(Path(work) / "optimized.onnx")
        session(str(path), ort.GraphOptimizationLevel.ORT_ENABLE_ALL, saved)
        for label, model, level in (("optimized at load", str(path), ort.GraphOptimizationLevel.ORT_ENABLE_ALL),
                                    ("saved optimized  ", saved, ort.GraphOptimizationLevel.ORT_DISABLE_ALL)):
            starts = []
            for _ in range(30):
                t0 = time.perf_counter()
                session(model, level).run(None, {"input": single})
                starts.append(time.perf_counter() - t0)
            steady = session(model, level)
            calls = []
            for _ in range(3):
                t0 = time.perf_counter()
                for _ in range(3000):
                    steady.run(None, {"input": single})
                calls.append((time.perf_counter() - t0) / 3000 * 1e6)
            print(f"{path.name} {label}: start + first call {np.median(starts) * 1000:.2f} ms, per call "
                  f"{' / '.join(f'{c:.1f}' for c in calls)} us")


def main() -> None:
    folder = ArtifactsFolder.load(Path(sys.argv[1] if len(sys.argv) > 1 else "artifacts"))
    inputs = folder.golden().inputs[0]
    cfg = SamplingConfig(slice_s=1.0, slice_iters=200)
    for art in (a for a in folder.manifest.artifacts if a.runtime == "onnxruntime"):
        for batch in (1, 32):
            results: dict[str, list[float]] = {"plain": [], "runner": []}
            for name in ("plain", "runner", "plain", "runner"):
                cls = PlainRunner if name == "plain" else OrtRunner
                runner = cls(Target("onnxruntime", "cpu"), folder.io, threads_for(batch),
                             path=str(folder.file(art)))
                time_slice(runner, [inputs[:batch]], cfg, [])  # warm-up, not counted
                times: list[float] = []
                for _ in range(3):
                    time_slice(runner, [inputs[:batch]], cfg, times)
                results[name].append(float(np.median(times)))
            print(f"{art.name:12s} batch {batch:3d}: " + ", ".join(
                f"{k} {' / '.join(f'{v * 1000:.1f}' for v in vs)} us" for k, vs in results.items()))
    offline_optimization(folder.file(folder.manifest.artifact("onnx")), inputs[:1])


if __name__ == "__main__":
    main()
