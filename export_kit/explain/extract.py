"""The smallest ONNX file that reproduces a divergence: the artifact's graph cut from its inputs to the first
diverging tensor (onnx.utils.Extractor keeps only the nodes and weights that tensor depends on), small enough to
attach to a bug report for the runtime's maintainers."""

from __future__ import annotations

from pathlib import Path

from export_kit.errors import UsageError
from export_kit.explain import taps
from export_kit.safeio.atomic import atomic_path


def check_destination(dest: Path) -> Path:
    """``--extract`` must name a new or regular file in an existing folder, never a link: refused before any work."""
    dest = Path(dest)
    if dest.is_symlink() or (dest.exists() and not dest.is_file()):
        raise UsageError(f"--extract {dest} is a link or not a regular file; name a new .onnx file")
    if not dest.parent.is_dir():
        raise UsageError(f"--extract {dest}: folder {dest.parent} does not exist")
    return dest


def extract_subgraph(source: Path, tensor: str, dest: Path) -> int:
    """Write the subgraph of ``source`` that computes ``tensor`` (its dequantized value after a QDQ pair) from
    the graph's inputs to ``dest``, checked; return its node count."""
    import onnx
    from onnx.utils import Extractor

    model = taps.load(source)
    weights = {t.name for t in model.graph.initializer}
    inputs = [i.name for i in model.graph.input if i.name not in weights]
    output = taps.dequantized(model).get(tensor, tensor)
    sub = Extractor(model).extract_model(inputs, [output])
    with atomic_path(Path(dest)) as tmp:
        onnx.save(sub, str(tmp))
        onnx.checker.check_model(str(tmp), full_check=True)
    return len(sub.graph.node)
