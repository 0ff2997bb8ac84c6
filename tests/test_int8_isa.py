"""Dynamic int8 ONNX keeps its parity on an x86 CPU without VNNI.

The suite's own CPU has AVX-512 VNNI, where onnxruntime's uint8 x int8 products cannot overflow; on an AVX2-only
CPU they are summed in pairs into a saturating int16. ``qemu-x86_64 -cpu max`` emulates such a CPU (its code
generator has AVX2 but neither AVX-512 nor VNNI), so the same onnxruntime runs the file through the other kernel.
The control re-quantizes the same graph with 8-bit weights and shows that the emulated run does take the
saturating path: without it this test could not fail.
"""

from __future__ import annotations

import platform
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from test_cli import invoke

from export_kit.folder.precision import default_tolerance

QEMU = shutil.which("qemu-x86_64")
HOST_HAS_VNNI = any(flag in Path("/proc/cpuinfo").read_text().split() for flag in ("avx512_vnni", "avx_vnni")) \
    if Path("/proc/cpuinfo").exists() else False
pytestmark = pytest.mark.skipif(platform.machine() != "x86_64" or QEMU is None,
                                reason="needs qemu-x86_64 (Debian's qemu-user; make test installs it as root)")

# Run under the emulator: the worst-sample cosine of one ONNX file's outputs against the golden PyTorch outputs.
WORST_COSINE = """
import sys
import numpy as np
import onnxruntime as ort
golden = np.load(sys.argv[2])
session = ort.InferenceSession(sys.argv[1], providers=["CPUExecutionProvider"])
out = session.run(None, {session.get_inputs()[0].name: golden["input_0"]})[0].astype(np.float64)
ref = golden["output_0"].astype(np.float64)
cos = (out * ref).sum(1) / np.linalg.norm(out, axis=1) / np.linalg.norm(ref, axis=1)
print(cos.min())
"""


def _worst_cosine(model: Path, golden: Path, emulate: bool) -> float:
    command = [sys.executable, "-c", WORST_COSINE, str(model), str(golden)]
    if emulate:
        command = [QEMU, "-cpu", "max", *command]
    done = subprocess.run(command, capture_output=True, text=True, timeout=300, check=True)
    return float(done.stdout.split()[-1])


@pytest.fixture(scope="module")
def text_folder(tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("isa") / "artifacts"
    result = invoke("build", "--model", "byo_models:text", "--input", "ids:int64:batchxseq=32:0..1000",
                    "--formats", "onnx,int8", "--out", out, "--golden", "40", "--no-bench")
    assert (out / "model.int8.onnx").exists(), result.output
    return out


def test_dynamic_int8_onnx_holds_its_bound_on_a_cpu_without_vnni(text_folder, tmp_path):
    from onnxruntime.quantization import QuantType, quantize_dynamic

    from export_kit.exporters.int8 import pre_process

    bound = default_tolerance("int8").min_cosine
    golden = text_folder / "golden.npz"
    assert _worst_cosine(text_folder / "model.int8.onnx", golden, emulate=True) >= bound
    assert _worst_cosine(text_folder / "model.int8.onnx", golden, emulate=False) >= bound

    pre, full_range = tmp_path / "pre.onnx", tmp_path / "full.onnx"
    pre_process(text_folder / "model.onnx", pre, [])
    quantize_dynamic(str(pre), str(full_range), weight_type=QuantType.QInt8, reduce_range=False)
    assert _worst_cosine(full_range, golden, emulate=True) < bound  # saturates without VNNI
    assert (_worst_cosine(full_range, golden, emulate=False) >= bound) == HOST_HAS_VNNI  # and only there
