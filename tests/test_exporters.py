"""Contract tests over every registered format: each one exports, loads back, and matches the model."""

import numpy as np
import pytest
import torch

from export_kit.errors import ManifestError, UsageError
from export_kit.exporters import EXPORTERS, Exporter, ExportRequest, parse_formats
from export_kit.folder.precision import DEFAULT_TOLERANCES, default_tolerance
from export_kit.runners import IOSpec, Target, open_runner
from export_kit.verification.compare import parity
from export_kit.verification.stats import agreement_below


def test_the_registry_holds_the_built_in_formats_each_with_a_tolerance_class():
    assert set(EXPORTERS) == {"onnx", "torchscript", "int8", "int8-static", "fp16", "ort", "executorch",
                              "export", "openvino", "aoti", "litert", "litert-int8"}
    assert {cls.precision for cls in EXPORTERS.values()} <= set(DEFAULT_TOLERANCES)


def test_a_format_with_an_unknown_precision_is_refused_at_registration():
    from export_kit.exporters import register

    class Fp8(Exporter):
        precision = "fp8"

    with pytest.raises(RuntimeError, match="no tolerance class"):
        register("fp8-onnx")(Fp8)
    assert "fp8-onnx" not in EXPORTERS
    with pytest.raises(ManifestError, match="no tolerance class"):
        default_tolerance("fp8")


def test_static_int8_without_calibration_data_is_an_export_error(tmp_path, checkpoint):
    from export_kit.errors import ExportError
    from export_kit.model.spec import load_checkpoint

    model, _ = load_checkpoint(checkpoint)
    request = ExportRequest(model=model, example=torch.zeros(1, 3, 32, 32), out_dir=tmp_path)
    with pytest.raises(ExportError, match="calibration images"):
        EXPORTERS["int8-static"]().export(request)


def test_static_int8_quantizes_convolutions_and_linears(built):
    from export_kit.folder.manifest import load_manifest

    layers = load_manifest(built[0]).artifact("int8-static").details["int8_layers"]
    assert sum(x.startswith("Conv") for x in layers) == 2 and sum(x.startswith("Gemm") for x in layers) == 3


@pytest.mark.parametrize("fmt", sorted(EXPORTERS))
def test_every_format_exports_loads_and_matches(fmt, tmp_path, checkpoint):
    from export_kit.model.spec import load_checkpoint

    model, _ = load_checkpoint(checkpoint)
    x = np.random.default_rng(1).normal(size=(16, 3, 32, 32)).astype(np.float32)
    with torch.inference_mode():
        ref = model(torch.from_numpy(x)).numpy()
    request = ExportRequest(model=model, example=torch.from_numpy(x[:1]), out_dir=tmp_path, metadata={"k": "v"},
                            calibration=x)
    artifacts = EXPORTERS[fmt]().export(request)
    assert artifacts, f"{fmt} produced no artifact"
    for art in artifacts:
        assert art.format == fmt and (tmp_path / art.path).is_file()
        with open_runner(Target(art.runtime, "cpu"), IOSpec.single((3, 32, 32)), path=tmp_path / art.path) as r:
            p = parity(ref, r.run_one(x))
        tol = default_tolerance(art.precision)
        assert p.nonfinite == 0
        assert not agreement_below(p.top1_agreement, p.samples, tol.min_top1_agreement)
        if tol.max_abs is not None:
            assert p.max_abs_err <= tol.max_abs
    assert not [p for p in tmp_path.iterdir() if ".partial-" in p.name]


def test_onnx_file_is_self_contained_with_dynamic_batch_and_metadata(built):
    import onnx

    proto = onnx.load(str(built[0] / "model.onnx"))
    dim0 = proto.graph.input[0].type.tensor_type.shape.dim[0]
    assert dim0.dim_param and not dim0.dim_value
    meta = {p.key: p.value for p in proto.metadata_props}
    assert "exportkit.preprocessing" in meta and "exportkit.classes" in meta
    assert [o.version for o in proto.opset_import if o.domain in ("", "ai.onnx")] == [18]
    assert not [p for p in built[0].iterdir() if p.suffix == ".data"]


def test_int8_records_which_layers_became_int8(built):
    from export_kit.folder.manifest import load_manifest

    arts = {a.name: a for a in load_manifest(built[0]).artifacts}
    assert any(layer.startswith("MatMulInteger") for layer in arts["int8-onnx"].details["int8_layers"])
    assert len(arts["int8-torchscript"].details["int8_layers"]) == 3  # the three Linear layers
    assert any("deprecated" in w for w in arts["int8-torchscript"].details["warnings"])


@pytest.mark.parametrize("text, fragment", [
    ("onnx,bogus", "unknown format(s) bogus"),
    ("", "comma-separated"),
    ("onnx,,int8", "comma-separated"),
    ("onnx,onnx", "more than once"),
])
def test_parse_formats_refuses_bad_lists_and_names_the_valid_ones(text, fragment):
    with pytest.raises(UsageError, match=None) as info:
        parse_formats(text)
    assert fragment in str(info.value)
    assert info.value.exit_code == 2


def test_torchscript_convolutions_are_traced_with_tf32_off(built):
    """Tracing writes cuDNN's TF32 switch into each convolution as a constant, which no runner can change later;
    an fp32 file must carry ``allow_tf32=False`` so a GPU (here or in a C++ app) computes it in fp32."""
    module = torch.jit.load(str(built[0] / "model.torchscript.pt"), map_location="cpu")
    convs = [n for n in module.graph.nodes() if n.kind() == "aten::_convolution"]
    assert len(convs) == 2
    assert all(list(n.inputs())[-1].toIValue() is False for n in convs)
    assert torch.backends.cudnn.allow_tf32 is True  # the exporter gave torch's default back
