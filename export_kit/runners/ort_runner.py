"""onnxruntime with an explicit provider list, tuned session options, and no silent fallback to the CPU.

At batch 1 the runner reuses one IO binding with preallocated input and output buffers: that saved about 8% of
a 56 us call on this project's 2-core CPU, while at batch 32 the extra input copy made it 1.4% slower, so larger
batches use a plain ``run`` (``examples/ort_session_ab.py`` measures both). Graph optimization happens at load
time: a copy saved already optimized started in 0.8 ms instead of 1.4 ms but ran no faster, and onnxruntime
warns that such a copy holds hardware-specific (NCHWc) layouts, so artifacts stay portable and unoptimized.
"""

from __future__ import annotations

import os
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from export_kit.errors import ExportError, UnavailableError
from export_kit.runners.base import OpenRequest, Runner, Runtime, register_runtime, thread_ladder

#: Short device names used in targets and reports -> onnxruntime execution provider names.
#: The platform whose kernels the ORT converter optimizes for: ARM, what phones run.
TARGET_PLATFORM = "arm"


def convert(onnx_path: Path, work: Path, target_platform: str = TARGET_PLATFORM) -> tuple[Path, Path]:
    """Run ``python -m onnxruntime.tools.convert_onnx_models_to_ort`` and return the .ort and config paths: the
    runtime's own tool, used by the ``ort`` exporter and by explain to tap an ``.ort`` artifact the same way."""
    cmd = [sys.executable, "-m", "onnxruntime.tools.convert_onnx_models_to_ort", str(onnx_path),
           "--output_dir", str(work), "--optimization_style", "Fixed", "--target_platform", target_platform]
    done = subprocess.run(cmd, capture_output=True, text=True)
    model, config = work / f"{onnx_path.stem}.ort", work / f"{onnx_path.stem}.required_operators.config"
    if done.returncode != 0 or not model.is_file() or not config.is_file():
        tail = (done.stderr or done.stdout).strip().splitlines()
        raise ExportError(f"onnxruntime's ORT converter failed: {tail[-1] if tail else f'exit {done.returncode}'}")
    return model, config



PROVIDERS = {"cpu": "CPUExecutionProvider", "cuda": "CUDAExecutionProvider", "tensorrt": "TensorrtExecutionProvider"}


def provider_unavailable_reason(device: str) -> str | None:
    import onnxruntime as ort

    provider = PROVIDERS.get(device)
    if provider is None:
        return f"unknown onnxruntime device {device!r}; known: {', '.join(PROVIDERS)}"
    available = ort.get_available_providers()
    if provider not in available:
        return f"{provider} is not in this onnxruntime build ({', '.join(available)})"
    return None


@dataclass
class OrtRunner(Runner):
    path: str = ""
    session: Any = None
    io_binding: bool = True

    def __post_init__(self) -> None:
        import onnxruntime as ort

        if why := provider_unavailable_reason(self.target.device):
            raise UnavailableError(why)
        opts = self._session_options(ort)
        if self.options is not None:  # a tuning candidate says whether to bind; the defaults do not
            self.io_binding = bool(self.options.get("io_binding", False))
        provider = PROVIDERS[self.target.device]
        self.session = ort.InferenceSession(self.path, sess_options=opts, providers=[provider])
        if self.session.get_providers()[0] != provider:
            raise UnavailableError(f"onnxruntime fell back to {self.session.get_providers()} instead of {provider}")
        self._inputs = [i.name for i in self.session.get_inputs()]  # the manifest's inputs, by position
        output = self.session.get_outputs()[0]
        self._output, self._row_shape = output.name, tuple(output.shape[1:])
        self._buffers: dict[tuple[int, ...], tuple[Any, np.ndarray, np.ndarray]] = {}
        self.io_binding = (self.io_binding and output.type == "tensor(float)" and len(self._inputs) == 1
                           and len(self.session.get_outputs()) == 1
                           and all(isinstance(d, int) for d in self._row_shape))
        threads = opts.intra_op_num_threads or None  # 0: onnxruntime picks (one per physical core)
        self.settings = {"providers": self.session.get_providers(), "threads": threads, "intra_op_threads": threads,
                         "graph_optimization": "ORT_ENABLE_ALL", "io_binding_at_batch_1": self.io_binding,
                         **({} if self.options is None else {"options": self.options})}

    def _session_options(self, ort):
        """Without ``options``: the per-batch thread heuristic. With them: onnxruntime's defaults (``{}``) plus
        the knobs a tuning candidate names: ``threads`` and ``spinning`` (False stops idle threads from
        spinning); its ``io_binding`` (a preallocated binding at batch 1) is applied by the runner."""
        opts = ort.SessionOptions()
        opts.log_severity_level = 3
        if self.options is None:
            opts.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
            opts.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
            opts.intra_op_num_threads = self.threads or (os.cpu_count() or 1)
            opts.inter_op_num_threads = 1
            return opts
        if "threads" in self.options:
            opts.intra_op_num_threads = int(self.options["threads"])
        if self.options.get("spinning") is False:
            opts.add_session_config_entry("session.intra_op.allow_spinning", "0")
        return opts

    def _run(self, inputs: list[np.ndarray]) -> list[np.ndarray]:
        if not self.io_binding or len(inputs[0]) > 1:
            return self.session.run(None, dict(zip(self._inputs, inputs, strict=True)))
        return [self._run_bound(inputs[0])]

    def _run_bound(self, batch: np.ndarray) -> np.ndarray:
        bound = self._buffers.get(batch.shape)
        if bound is None:  # one binding with preallocated input and output per input shape, reused every call
            inp = np.empty_like(batch)
            out = np.empty((len(batch), *self._row_shape), np.float32)
            binding = self.session.io_binding()
            binding.bind_cpu_input(self._inputs[0], inp)
            binding.bind_output(self._output, "cpu", 0, np.float32, out.shape, out.ctypes.data)
            bound = self._buffers[batch.shape] = (binding, inp, out)
        binding, inp, out = bound
        np.copyto(inp, batch)
        self.session.run_with_iobinding(binding)
        return out.copy()  # the buffer is overwritten by the next call

    def close(self) -> None:
        self.session = None


def _version() -> str:
    import onnxruntime

    return onnxruntime.__version__


def _open(request: OpenRequest) -> Runner:
    return OrtRunner(request.target, request.io, request.threads, options=request.options, path=str(request.path))


def candidates(device: str, batch: int) -> list[dict]:
    """onnxruntime's defaults first; on the CPU, thread counts up the ladder (with the IO binding at batch 1) and
    every core without spinning. A GPU provider's work does not run on these threads: defaults only."""
    if device != "cpu":
        return [{}]
    cores = os.cpu_count() or 1
    found = [{}, *({"threads": n} for n in thread_ladder(cores)), {"threads": cores, "spinning": False}]
    if batch == 1:
        found += [{"threads": n, "io_binding": True} for n in thread_ladder(cores)]
    return found


register_runtime(Runtime("onnxruntime", ("cpu", "cuda", "tensorrt"), _open, provider_unavailable_reason, _version,
                         candidates=candidates))
#: onnxruntime running an ORT-format file: its optimizations were fixed for CPUs at conversion, as on a phone, so
#: it is checked on the CPU provider only.
register_runtime(Runtime("onnxruntime-mobile", ("cpu",), _open, provider_unavailable_reason, _version,
                         candidates=candidates))
