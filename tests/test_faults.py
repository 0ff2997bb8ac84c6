"""Planted faults: each damages a good folder in one known way, and verify must fail and name it."""

import json

import numpy as np
import onnx
from onnx import numpy_helper

from export_kit import api


def _verify(folder, test=None):
    report = api.verify(folder, test, log=lambda _: None)
    return {(r.artifact, r.device): r for r in report.verify_rows()}, report


def _scale_onnx_weight(path, factor):
    proto = onnx.load(str(path))
    init = max(proto.graph.initializer, key=lambda t: np.prod(t.dims))
    weights = numpy_helper.to_array(init)
    init.CopyFrom(numpy_helper.from_array((weights * factor).astype(weights.dtype), init.name))
    onnx.save(proto, str(path))


def _rehash(folder, name):
    from export_kit.manifest import Manifest, describe_file, load_manifest

    m = load_manifest(folder)
    art = m.artifact(name)
    art.sha256, art.bytes = describe_file(folder, art.path)
    Manifest.write(m, folder)


def test_a_weight_scaled_by_one_percent_fails_parity(built_copy):
    _scale_onnx_weight(built_copy / "model.onnx", 1.01)
    _rehash(built_copy, "onnx")  # a consistent manifest: only the numbers can tell
    rows, report = _verify(built_copy)
    assert not report
    assert rows[("onnx", "cpu")].failed_checks() == ["parity_batch1", "parity_batch32"]
    assert rows[("torchscript", "cpu")].status == "passed"


def test_changed_bytes_fail_the_integrity_check(built_copy):
    with open(built_copy / "model.torchscript.pt", "r+b") as fh:
        fh.seek(200)
        fh.write(b"\x00\x01\x02")
    rows, _ = _verify(built_copy)
    assert rows[("torchscript", "cpu")].failed_checks() == ["integrity"]


def test_a_truncated_file_fails_integrity_and_is_never_loaded(built_copy):
    path = built_copy / "model.int8.onnx"
    path.write_bytes(path.read_bytes()[: path.stat().st_size // 2])
    rows, _ = _verify(built_copy)
    row = rows[("int8-onnx", "cpu")]
    assert row.failed_checks() == ["integrity"] and "bytes" in row.reason


def test_preprocessing_drift_in_the_manifest_fails_every_artifact(built_copy):
    manifest = json.loads((built_copy / "manifest.json").read_text())
    manifest["preprocessing"]["mean"][0] += 0.05
    (built_copy / "manifest.json").write_text(json.dumps(manifest))
    rows, _ = _verify(built_copy)
    assert all("preprocessing" in r.failed_checks() for (_, dev), r in rows.items() if dev == "cpu")


def test_a_batch_size_baked_into_the_graph_fails_at_batch_32(built_copy):
    path = built_copy / "model.onnx"
    proto = onnx.load(str(path))
    for value in (*proto.graph.input, *proto.graph.output):
        value.type.tensor_type.shape.dim[0].dim_value = 1
    onnx.save(proto, str(path))
    _rehash(built_copy, "onnx")
    rows, _ = _verify(built_copy)
    row = rows[("onnx", "cpu")]
    assert row.failed_checks() == ["parity_batch32"]
    assert "runtime error" in row.reason


def test_nan_outputs_fail_even_without_a_logit_bound(built_copy):
    # int8 has no max-abs bound; NaN must still fail. Poison the first Gemm bias of the int8 model.
    path = built_copy / "model.int8.onnx"
    proto = onnx.load(str(path))
    bias = next(t for t in proto.graph.initializer if t.data_type == onnx.TensorProto.FLOAT and len(t.dims) == 1
                and t.dims[0] == 10)
    arr = numpy_helper.to_array(bias).copy()
    arr[3] = np.nan
    bias.CopyFrom(numpy_helper.from_array(arr, bias.name))
    onnx.save(proto, str(path))
    _rehash(built_copy, "int8-onnx")
    rows, _ = _verify(built_copy)
    assert "NaN" in rows[("int8-onnx", "cpu")].reason


def test_an_int8_accuracy_drop_beyond_budget_fails(built_copy, synthetic):
    _scale_onnx_weight(built_copy / "model.int8.onnx", 0.0)  # a legal model that has lost its largest layer
    _rehash(built_copy, "int8-onnx")
    rows, _ = _verify(built_copy, synthetic.test)
    row = rows[("int8-onnx", "cpu")]
    assert "accuracy" in row.failed_checks() and "points below the reference" in row.reason


def test_the_untouched_copy_passes(built_copy, synthetic):
    _, report = _verify(built_copy, synthetic.test)
    assert report, report.failures()
