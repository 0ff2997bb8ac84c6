"""exportkit explain: planted faults are localized to the layer that was damaged, on the seed CNN and on a
torchvision ResNet (residual adds, batch norm folded into convolutions by the exporter)."""

import json
import shutil

import numpy as np
import pytest
from test_cli import invoke

from export_kit.errors import UsageError
from export_kit.explain import taps
from export_kit.explain.core import explain_artifact
from export_kit.faults.onnx import _replace, edit_onnx
from export_kit.folder.access import Access, open_folder


def scale_initializer(folder, artifact, tensor, factor):
    """Multiply one initializer of an ONNX artifact by ``factor`` (the manifest's hash rewritten)."""
    from onnx import numpy_helper

    def edit(proto):
        init = next(t for t in proto.graph.initializer if t.name == tensor)
        _replace(proto, init, numpy_helper.to_array(init).astype(np.float64) * factor)

    edit_onnx(folder, artifact, edit)


def activation_scale(folder, artifact, tensor):
    """The scale initializer of the QuantizeLinear that follows ``tensor`` in a QDQ artifact."""
    import onnx

    from export_kit.folder.manifest import load_manifest

    proto = onnx.load(str(folder / load_manifest(folder).artifact(artifact).path))
    return next(n.input[1] for n in proto.graph.node if n.op_type == "QuantizeLinear" and n.input[0] == tensor)


def explained(folder, name, factories=()):
    source, _ = open_folder(folder, Access(factories=tuple(factories)), writes=False)
    return explain_artifact(source, name)


def test_an_untouched_fp32_onnx_file_matches_eager_in_every_layer(built):
    found = explained(built[0], "onnx")
    rows = found.rows()
    assert found.first is None and found.reference == "pytorch"
    assert [r.module for r in rows] == ["features.0", "features.1", "features.2", "features.3", "features.4",
                                        "features.5", "classifier.0", "classifier.1", "classifier.2",
                                        "classifier.3", "classifier.4", "classifier.5"]
    assert all(r.snr_db is None or r.snr_db > 100 for r in rows), [r.snr_db for r in rows]


def test_a_weight_scaled_by_1_01_is_named_first_and_nothing_before_it(built_copy):
    scale_initializer(built_copy, "onnx", "features.3.weight", 1.01)
    found = explained(built_copy, "onnx")
    first = found.rows()[[r.over for r in found.rows()].index(True)]
    assert (first.module, first.op, first.weights[0]) == ("features.3", "Conv", "features.3.weight")
    assert found.first["tensor"] == first.tensor
    assert 39 < first.snr_db < 41  # a 1% change of one layer's output is 40 dB
    assert not any(r.over for r in found.rows()[:3])


def test_a_miscalibrated_int8_activation_is_named_first(built_copy):
    """The activation scale after the second convolution shrunk 50-fold: its values clip at 1/50 of their range."""
    scale = activation_scale(built_copy, "int8-static", "relu_1")
    scale_initializer(built_copy, "int8-static", scale, 1 / 50)
    found = explained(built_copy, "int8-static")
    assert found.reference == "onnx"
    assert found.first["tensor"] == "relu_1" and found.first["module"] == "features.4"
    assert explained(built_copy, "int8-onnx").first is None  # the dynamic int8 file was left alone


@pytest.fixture(scope="module")
def half(tmp_path_factory, checkpoint, synthetic):
    from conftest import build_folder

    out = tmp_path_factory.mktemp("half") / "artifacts"
    build_folder(checkpoint, synthetic.test, out, formats=("onnx", "fp16"), bench_batches=())
    return out


def test_an_fp16_overflow_to_inf_is_named_first_by_its_nonfinite_values(half, tmp_path):
    copy = tmp_path / "artifacts"
    shutil.copytree(half, copy)
    scale_initializer(copy, "fp16", "classifier.1.weight", 3e4)  # products past fp16's 65504
    found = explained(copy, "fp16")
    assert found.first["module"] == "classifier.1" and found.first["nonfinite"] > 0
    assert not any(r.nonfinite for r in found.rows()[:7])
    assert explained(half, "fp16").first is None  # the unplanted fp16 file is within its floor


def test_explain_writes_report_sections_a_plot_and_a_subgraph_that_reproduces_the_layer(built_copy, tmp_path):
    import onnx
    import onnxruntime as ort

    scale_initializer(built_copy, "onnx", "features.3.weight", 1.01)
    sub = tmp_path / "first.onnx"
    result = invoke("explain", "--artifacts", built_copy, "--artifact", "onnx", "--extract", sub)
    assert result.exit_code == 1, result.output
    assert "first diverging layer `conv2d_1` (Conv, module `features.3`" in result.output
    report = json.loads((built_copy / "report.json").read_text())
    assert [e["artifact"] for e in report["explanations"]] == ["onnx"]
    assert "### onnx" in (built_copy / "report.md").read_text() and (built_copy / "explain-onnx.png").is_file()
    graph = onnx.load(str(sub)).graph
    assert [n.op_type for n in graph.node] == ["Conv", "Relu", "MaxPool", "Conv"]
    golden = np.load(built_copy / "golden.npz")["input_0"][:4]
    got = ort.InferenceSession(str(sub)).run(None, {"input": golden})[0]
    assert got.shape[1:] == (16, 10, 10)


def test_verify_explains_each_failed_parity_row_in_its_report(built_copy):
    scale_initializer(built_copy, "onnx", "features.3.weight", 1.01)
    result = invoke("verify", "--artifacts", built_copy, "--device", "cpu")
    assert result.exit_code == 1
    report = json.loads((built_copy / "report.json").read_text())
    (onnx_row,) = report["explanations"]
    assert onnx_row["artifact"] == "onnx" and onnx_row["first"]["module"] == "features.3"
    assert "first diverging layer `conv2d_1`" in (built_copy / "report.md").read_text()
    again = invoke("verify", "--artifacts", built_copy, "--device", "cpu", "--no-explain")
    assert again.exit_code == 1 and json.loads((built_copy / "report.json").read_text())["explanations"] == []


@pytest.mark.parametrize(("args", "code", "fragment"), [
    (["--artifact", "nope"], 2, "is not in"),
    (["--artifact", "torchscript"], 2, "exportkit freezes TorchScript files"),
    (["--artifact", "int8-torchscript"], 2, "exportkit freezes TorchScript files"),
    (["--artifact", "pytorch"], 2, "the eager model is the reference"),
    (["--artifact", "onnx", "--extract", "/nonexistent/dir/x.onnx"], 2, "does not exist"),
])
def test_bad_explain_requests_are_one_line_errors(built, args, code, fragment):
    result = invoke("explain", "--artifacts", built[0], *args)
    assert result.exit_code == code and fragment in result.output, result.output
    assert len(result.output.strip().splitlines()) == 1


@pytest.fixture(scope="module")
def resnet(tmp_path_factory):
    from conftest import write_image_folder

    data = tmp_path_factory.mktemp("resnet-data")
    write_image_folder(data, [f"c{i}" for i in range(10)], 4, size=64)
    out = tmp_path_factory.mktemp("resnet") / "artifacts"
    result = invoke("build", "--model", "byo_models:resnet", "--input-shape", "3x64x64", "--data-dir", data,
                    "--formats", "onnx,fp16,int8-static", "--out", out, "--golden", "16", "--no-bench")
    assert (out / "manifest.json").is_file(), result.output
    return out


@pytest.mark.slow
def test_a_scaled_weight_inside_a_residual_block_is_named_first(resnet, tmp_path):
    copy = tmp_path / "artifacts"
    shutil.copytree(resnet, copy)
    scale_initializer(copy, "onnx", "layer2.0.conv1.weight", 1.01)
    found = explained(copy, "onnx", ["byo_models:resnet"])
    rows = found.rows()
    first = rows[[r.over for r in rows].index(True)]
    assert "layer2.0.conv1.weight" in first.weights and first.module == "layer2.0.bn1"  # conv and bn, folded
    assert all(r.snr_db is None or r.snr_db > 100 for r in rows[:rows.index(first)])
    shared = [r.tensor for r in rows if r.module == "layer1.0.relu"]  # one ReLU module, called twice per block
    assert len(shared) == 2 and len(set(shared)) == 2


def test_int8_keep_float_leaves_the_costliest_layer_in_float_and_verifies_both(tmp_path, checkpoint, synthetic):
    from conftest import build_folder

    from export_kit.explain.layers import costliest
    from export_kit.folder.manifest import load_manifest

    out = tmp_path / "artifacts"
    report = build_folder(checkpoint, synthetic.test, out, formats=("onnx", "int8-static"),
                          calibration=synthetic.train.subset(30), bench_batches=(1,),
                          format_options={"int8-static": {"keep_float": (1, 2)}})
    arts = {a.name: a for a in load_manifest(out).artifacts}
    (kept,) = arts["int8-static-keep1"].details["kept_float"]
    assert f"{kept['op']}:{kept['node']}" in arts["int8-static"].details["int8_layers"]
    assert f"{kept['op']}:{kept['node']}" not in arts["int8-static-keep1"].details["int8_layers"]
    assert arts["int8-static-keep2"].details["kept_float"][0] == kept  # one ranking, the worst first
    made_by = taps.producers(taps.load(out / arts["int8-static"].path))
    compute = [r for r in explained(out, "int8-static").rows() if made_by[r.tensor].op_type in ("Conv", "Gemm")]
    assert kept["tensor"] == costliest(compute, 1)[0].tensor  # judged on calibration images, agrees on golden ones
    rows = {(r["artifact"], r["device"]) for r in report.verify if r["accuracy"] is not None}
    assert {("int8-static", "cpu"), ("int8-static-keep1", "cpu")} <= rows
    assert {b["artifact"] for b in report.bench if b["status"] == "passed"} >= {"int8-static", "int8-static-keep1"}


def test_each_format_validates_its_own_options():
    """Options travel through build as a plain mapping; only the format they belong to reads or checks them."""
    from export_kit.exporters.base import check_format_options

    assert check_format_options(["onnx", "int8-static"], {"int8-static": {"keep_float": [2, 1]}}) == {
        "int8-static": {"keep_float": (2, 1)}}
    for formats, given, words in ((["int8-static"], {"int8-static": {"keep": [1]}}, "takes the option keep_float"),
                                  (["int8-static"], {"int8-static": {"keep_float": [0]}}, "from 1 to 64"),
                                  (["int8-static"], {"int8-static": {"keep_float": [1, 1]}}, "distinct"),
                                  (["onnx"], {"onnx": {"opset": 18}}, "format onnx takes no options"),
                                  (["onnx"], {"int8-static": {"keep_float": [1]}}, "add int8-static to --formats")):
        with pytest.raises(UsageError, match=words):
            check_format_options(formats, given)


def test_int8_keep_float_without_int8_static_is_a_usage_error(built, tmp_path):
    result = invoke("build", "--checkpoint", built[0] / "checkpoint.pt", "--dataset", "synthetic",
                    "--formats", "onnx", "--int8-keep-float", "2", "--out", tmp_path / "x")
    assert result.exit_code == 2 and "add int8-static to --formats" in result.output
    assert not (tmp_path / "x").exists()
    for bad in ("0", "1,1", "x", "65"):
        result = invoke("build", "--checkpoint", built[0] / "checkpoint.pt", "--dataset", "synthetic",
                        "--int8-keep-float", bad, "--out", tmp_path / "y")
        assert result.exit_code == 2 and "distinct comma-separated integers" in result.output, (bad, result.output)


def _first_quantized_conv_output(folder, after: int):
    """The ``after``-th tensor (graph order) that a Conv writes and a QuantizeLinear reads in the int8-static file,
    with the scale initializer of that QuantizeLinear, which no earlier QuantizeLinear shares."""
    from export_kit.folder.manifest import load_manifest

    proto = taps.load(folder / load_manifest(folder).artifact("int8-static").path)
    made_by = taps.producers(proto)
    quants = [n for n in proto.graph.node if n.op_type == "QuantizeLinear"]
    convs = [q for q in quants if q.input[0] in made_by and made_by[q.input[0]].op_type == "Conv"]
    target = convs[after]
    assert all(q.input[1] != target.input[1] for q in quants[:quants.index(target)])
    return target.input[0], target.input[1]


@pytest.mark.slow
def test_an_fp16_overflow_and_a_miscalibrated_int8_scale_inside_residual_blocks_are_named_first(resnet, tmp_path):
    copy = tmp_path / "artifacts"
    shutil.copytree(resnet, copy)
    scale_initializer(copy, "fp16", "layer3.0.conv1.weight", 3e4)
    found = explained(copy, "fp16")
    assert found.first["nonfinite"] > 0 and "layer3.0.conv1.weight" in found.first["weights"]
    tensor, scale = _first_quantized_conv_output(copy, 6)
    scale_initializer(copy, "int8-static", scale, 1 / 50)
    found = explained(copy, "int8-static")
    assert found.first["tensor"] == tensor, (tensor, found.first)
    assert explained(resnet, "int8-static").first is None and explained(resnet, "fp16").first is None


@pytest.mark.parametrize("entry", [{"artifact": "onnx"}, {"artifact": "onnx", "precision": "fp32", "reference": "x",
                                   "samples": 1, "min_snr_db": 60, "layers": [{"tensor": "t"}]}, "not an object"])
def test_a_malformed_explanation_in_report_json_is_discarded_not_a_crash(built_copy, entry):
    path = built_copy / "report.json"
    report = json.loads(path.read_text())
    report["explanations"] = [entry]
    path.write_text(json.dumps(report))
    result = invoke("verify", "--artifacts", built_copy, "--device", "cpu", "--no-explain")
    assert result.exit_code == 0, result.output
    assert json.loads(path.read_text())["explanations"] == []
