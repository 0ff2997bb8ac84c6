"""The Runner interface: the public method validates, backends compute, IO binding never leaks buffers."""

import numpy as np
import pytest

from export_kit.errors import UnavailableError, UsageError
from export_kit.runners import Target, open_runner
from export_kit.runners.ort_runner import OrtRunner


@pytest.fixture
def onnx_runner(built):
    with open_runner(Target("onnxruntime", "cpu"), path=built[0] / "model.onnx", input_shape=(3, 32, 32),
                     threads=1) as runner:
        yield runner


@pytest.mark.parametrize("bad", [np.zeros((1, 3, 32, 32), np.float64), np.zeros((1, 3, 16, 16), np.float32),
                                 np.zeros((3, 32, 32), np.float32), [[0.0]]])
def test_run_refuses_wrong_dtype_and_shape(onnx_runner, bad):
    with pytest.raises(UsageError, match="expects"):
        onnx_runner.run(bad)


def test_io_binding_at_batch_1_returns_fresh_arrays_that_match_a_plain_run(onnx_runner, built):
    golden = np.load(built[0] / "golden.npz")
    assert onnx_runner.settings["io_binding_at_batch_1"] is True
    first = onnx_runner.run(golden["inputs"][:1])
    second = onnx_runner.run(golden["inputs"][1:2])
    assert not np.array_equal(first, second)  # the first result was not overwritten by the second call
    plain = onnx_runner.session.run(None, {"input": golden["inputs"][:1]})[0]
    assert np.array_equal(first, plain)
    batched = onnx_runner.run(golden["inputs"][:8])
    assert np.allclose(batched[:1], first, atol=1e-5)


def test_a_missing_provider_is_unavailable_not_a_silent_cpu_fallback(built):
    import onnxruntime

    if "CUDAExecutionProvider" in onnxruntime.get_available_providers():
        pytest.skip("this onnxruntime has CUDA")
    with pytest.raises(UnavailableError, match="CUDAExecutionProvider is not in this onnxruntime build"):
        OrtRunner(Target("onnxruntime", "cuda"), (3, 32, 32), path=str(built[0] / "model.onnx"))


@pytest.mark.gpu
def test_cuda_runners_match_the_cpu_reference(built):
    import torch

    if not torch.cuda.is_available():
        pytest.skip("no CUDA device")
    golden = np.load(built[0] / "golden.npz")
    with open_runner(Target("torchscript", "cuda"), path=built[0] / "model.torchscript.pt",
                     input_shape=(3, 32, 32)) as runner:
        assert np.abs(runner.run(golden["inputs"]) - golden["logits"]).max() < 1e-3
