"""Write the resize graphs the JavaScript consumer runs photos through: resize/bilinear.onnx and bicubic.onnx
(antialiased, the default), bilinear-no-antialias.onnx and bicubic-no-antialias.onnx.

    python examples/js/make_resize_graphs.py [OUT_DIR]

exportkit's float32 resize is torch.nn.functional.interpolate (half-pixel centres, antialiased unless the manifest
says not). JavaScript has no torch, but onnxruntime-node has the ONNX Resize operator, which computes the same
filter when told to. Antialiased: antialias on, exclude_outside on (the filter's weights over pixels outside the
image are dropped and the rest renormalised, as torch does), and for bicubic the coefficient -0.5 (torch's
antialiased kernel). Not antialiased: exclude_outside off (edge pixels repeat) and the bicubic coefficient -0.75
(torch's plain kernel). Measured against torch, the values agree to within about 3e-3 of a pixel level. Each
graph takes ``x`` float32 (1, C, H, W) and ``sizes`` int64 [1, C, h, w]. The files are committed; a test
regenerates them and compares bytes.
"""

from __future__ import annotations

import sys
from pathlib import Path

import onnx
from onnx import TensorProto, helper

#: file name -> the Resize node's attributes, for each filter in the manifest, antialiased or not
GRAPHS = {
    "bilinear": {"mode": "linear", "antialias": 1, "exclude_outside": 1},
    "bicubic": {"mode": "cubic", "cubic_coeff_a": -0.5, "antialias": 1, "exclude_outside": 1},
    "bilinear-no-antialias": {"mode": "linear"},
    "bicubic-no-antialias": {"mode": "cubic", "cubic_coeff_a": -0.75},
}


def resize_graph(name: str) -> onnx.ModelProto:
    node = helper.make_node("Resize", ["x", "", "", "sizes"], ["y"], coordinate_transformation_mode="half_pixel",
                            **GRAPHS[name])
    graph = helper.make_graph(
        [node], f"exportkit_resize_{name.replace('-', '_')}",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, "channels", "height", "width"]),
         helper.make_tensor_value_info("sizes", TensorProto.INT64, [4])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, [1, "channels", "out_height", "out_width"])])
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 18)], ir_version=8,
                              producer_name="exportkit")
    onnx.checker.check_model(model)
    return model


def main(out: Path) -> None:
    out.mkdir(parents=True, exist_ok=True)
    for name in GRAPHS:
        (out / f"{name}.onnx").write_bytes(resize_graph(name).SerializeToString())
        print(f"wrote {out / f'{name}.onnx'}")


if __name__ == "__main__":
    main(Path(sys.argv[1]) if len(sys.argv) > 1 else Path(__file__).resolve().parent / "resize")
