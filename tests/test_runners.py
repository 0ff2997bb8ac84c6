"""The Runner interface: named inputs and outputs, the public method validates, backends compute, IO binding never
leaks buffers; and the runtime registry every runtime file adds itself to."""

import numpy as np
import pytest

from export_kit.errors import UnavailableError, UsageError
from export_kit.runners import RUNTIMES, IOSpec, Target, open_runner
from export_kit.runners.ort_runner import OrtRunner

IO = IOSpec.single((3, 32, 32))


@pytest.fixture
def onnx_runner(built):
    with open_runner(Target("onnxruntime", "cpu"), IO, path=built[0] / "model.onnx", threads=1) as runner:
        yield runner


@pytest.mark.parametrize("bad", [{"input": np.zeros((1, 3, 32, 32), np.float64)},
                                 {"input": np.zeros((1, 3, 16, 16), np.float32)},
                                 {"input": np.zeros((3, 32, 32), np.float32)}, {"input": [[0.0]]},
                                 {"x": np.zeros((1, 3, 32, 32), np.float32)}, np.zeros((1, 3, 32, 32), np.float32)])
def test_run_refuses_wrong_names_dtype_and_shape(onnx_runner, bad):
    with pytest.raises(UsageError, match="expects"):
        onnx_runner.run(bad)


def test_outputs_come_back_by_name(onnx_runner, built):
    golden = np.load(built[0] / "golden.npz")
    out = onnx_runner.run({"input": golden["input_0"][:4]})
    assert list(out) == ["logits"] and np.abs(out["logits"] - golden["output_0"][:4]).max() < 1e-4


def test_every_runtime_is_registered_with_devices_and_an_availability_check():
    assert set(RUNTIMES) == {"eager", "torchscript", "torch-export", "onnxruntime", "onnxruntime-mobile",
                             "executorch", "aoti", "openvino", "openvino-default", "litert"}
    assert sorted(n for n, r in RUNTIMES.items() if r.runs_code) == ["aoti", "torch-export", "torchscript"]
    for runtime in RUNTIMES.values():
        assert "cpu" in runtime.devices
        assert runtime.unavailable("cpu") is None or "pip install 'exportkit[" in runtime.unavailable("cpu")


def test_a_torch_runner_gives_back_the_thread_count_it_changed(built):
    import torch

    from export_kit.model.spec import load_checkpoint

    before = torch.get_num_threads()
    model, _ = load_checkpoint(built[0] / "checkpoint.pt")
    with open_runner(Target("eager", "cpu"), IO, module=model, threads=before + 1) as runner:
        assert runner.settings["threads"] == before + 1 == torch.get_num_threads()
    assert torch.get_num_threads() == before


def test_io_binding_at_batch_1_returns_fresh_arrays_that_match_a_plain_run(onnx_runner, built):
    golden = np.load(built[0] / "golden.npz")
    assert onnx_runner.settings["io_binding_at_batch_1"] is True
    first = onnx_runner.run_one(golden["input_0"][:1])
    second = onnx_runner.run_one(golden["input_0"][1:2])
    assert not np.array_equal(first, second)  # the first result was not overwritten by the second call
    plain = onnx_runner.session.run(None, {"input": golden["input_0"][:1]})[0]
    assert np.array_equal(first, plain)
    batched = onnx_runner.run_one(golden["input_0"][:8])
    assert np.allclose(batched[:1], first, atol=1e-5)


def test_a_missing_provider_is_unavailable_not_a_silent_cpu_fallback(built):
    import onnxruntime

    if "CUDAExecutionProvider" in onnxruntime.get_available_providers():
        pytest.skip("this onnxruntime has CUDA")
    with pytest.raises(UnavailableError, match="CUDAExecutionProvider is not in this onnxruntime build"):
        OrtRunner(Target("onnxruntime", "cuda"), IO, path=str(built[0] / "model.onnx"))


def test_torchscript_with_cpu_only_quantized_ops_is_found_before_it_runs(built):
    import torch

    from export_kit.runners.torch_runner import cpu_only_ops

    int8 = torch.jit.load(str(built[0] / "model.int8.torchscript.pt"), map_location="cpu")
    fp32 = torch.jit.load(str(built[0] / "model.torchscript.pt"), map_location="cpu")
    assert cpu_only_ops(int8) == ["quantized::linear_dynamic"]
    assert cpu_only_ops(fp32) == []


@pytest.mark.gpu
def test_int8_torchscript_on_cuda_is_unavailable_not_a_crash(built):
    import torch

    if not torch.cuda.is_available():
        pytest.skip("no CUDA device")
    with pytest.raises(UnavailableError, match="quantized::linear_dynamic has CPU kernels only"):
        open_runner(Target("torchscript", "cuda"), IO, path=built[0] / "model.int8.torchscript.pt")
    rows = {(r["artifact"], r["device"]): r for r in built[1].verify}
    assert rows[("int8-torchscript", "cuda")]["status"] == "skipped"


@pytest.mark.gpu
def test_cuda_runners_match_the_cpu_reference(built):
    import torch

    if not torch.cuda.is_available():
        pytest.skip("no CUDA device")
    golden = np.load(built[0] / "golden.npz")
    with open_runner(Target("torchscript", "cuda"), IO, path=built[0] / "model.torchscript.pt") as runner:
        assert np.abs(runner.run_one(golden["input_0"]) - golden["output_0"]).max() < 1e-3


@pytest.mark.gpu
def test_eager_cuda_computes_in_true_fp32_even_where_tf32_is_allowed():
    """cuDNN may round convolutions to TF32 by default; the fp32 row must not. Random weights of the residual CNN
    give logits of order 1, where float32 kernels that differ only in summation order agree to ~1e-6 and TF32
    (10-bit mantissa) misses by ~1e-4."""
    import torch

    from train.models import residual_cnn

    if not torch.cuda.is_available():
        pytest.skip("no CUDA device")
    torch.manual_seed(0)
    model = residual_cnn(num_classes=10).eval()
    x = np.random.default_rng(0).standard_normal((8, 3, 32, 32)).astype(np.float32)
    with torch.inference_mode():
        cpu = model(torch.from_numpy(x)).numpy()
    torch.backends.cudnn.allow_tf32 = True
    with open_runner(Target("eager", "cuda"), IO, module=model) as runner:
        assert runner.settings["tf32"] is False
        assert np.abs(runner.run_one(x) - cpu).max() < 2e-5 * max(1.0, np.abs(cpu).max())
    assert torch.backends.cudnn.allow_tf32 is True  # the caller's setting is given back


def test_onnxruntime_candidates_start_with_the_defaults_and_apply_their_knobs(built):
    candidates = RUNTIMES["onnxruntime"].candidates("cpu", 1)
    assert candidates[0] == {} and {"threads": 1} in candidates
    assert RUNTIMES["onnxruntime"].candidates("cuda", 1) == [{}]
    golden = np.load(built[0] / "golden.npz")
    for options in candidates:
        runner = OrtRunner(Target("onnxruntime", "cpu"), IO, options=options, path=str(built[0] / "model.onnx"))
        assert runner.settings["options"] == options and runner.io_binding == options.get("io_binding", False)
        assert runner.settings["threads"] == options.get("threads")
        assert np.abs(runner.run_one(golden["input_0"][:1]) - golden["output_0"][:1]).max() < 1e-4
