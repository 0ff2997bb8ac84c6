"""``exportkit explain``: run an ONNX artifact and its reference with every intermediate tensor exposed, pair the
tensors, and name the first layer whose error passes its precision's floor.

The reference of the fp32 ONNX file is the eager model (module outputs by forward hooks, paired through the
exporter's scope metadata), and so is the ORT-format file's, whose tensors are exposed in the ONNX file it is
converted from before the same conversion runs again; every other ONNX artifact (fp16, dynamic and static
int8) is compared with the folder's fp32 ONNX file, whose tensor names the converters keep. Artifacts whose
runtime cannot expose intermediate tensors are refused with the reason (:class:`NotLocalizableError`).
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np

from export_kit.errors import ManifestError, UsageError
from export_kit.explain import eager, taps
from export_kit.explain.layers import MIN_SNR_DB, LayerDiff, diff, first_over
from export_kit.folder.load import ArtifactsFolder
from export_kit.folder.manifest import Artifact
from export_kit.results import Record

#: Golden samples run through both graphs: enough to see a layer's error on varied inputs, few enough that a
#: 224x224 network's every activation fits in memory twice.
DEFAULT_SAMPLES = 16

WHY_NOT = {
    "eager": "the eager model is the reference everything is compared with",
    "torchscript": "exportkit freezes TorchScript files, which inlines every submodule into one graph, so no "
                   "layer's output can be read; explain the ONNX artifact of the same model",
    "torch-export": "exportkit does not pair a torch.export program's nodes with the eager modules yet; explain "
                    "the ONNX artifact of the same model",
    "executorch": "exportkit does not read ExecuTorch's ETDump debug output (a runtime built with event tracing "
                  "is needed for it); explain the ONNX artifact of the same model",
}


class NotLocalizableError(UsageError):
    """The artifact's runtime exposes no intermediate tensors, or the folder lacks the reference to pair them."""

    def __init__(self, name: str, why: str) -> None:
        super().__init__(f"{name} is not localizable: {why}")
        self.why = why


@dataclass
class Explanation(Record):
    """Per matched layer, in graph order, the error against the reference; ``first`` is where it starts."""

    artifact: str
    precision: str
    reference: str
    samples: int
    min_snr_db: float
    layers: list[dict] = field(default_factory=list)
    first: dict | None = None
    tapped_drift: float = 0.0
    seconds: float = 0.0
    plot: str = ""
    reason: str = ""  # why it could not be localized; the layers are then empty

    @property
    def diverges(self) -> bool:
        return self.first is not None

    def rows(self) -> list[LayerDiff]:
        return [LayerDiff.from_dict(d) for d in self.layers]

    def check(self) -> None:
        """Raise TypeError or ValueError when a stored explanation (report.json is input) is malformed."""
        if not isinstance(self.layers, list) or not (self.first is None or isinstance(self.first, dict)):
            raise TypeError("explanation layers must be a list and first an object")
        self.rows()
        if self.first is not None:
            LayerDiff.from_dict(self.first)


def reference_for(folder: ArtifactsFolder, artifact: Artifact) -> Artifact:
    """What ``artifact``'s layers are compared with, or :class:`NotLocalizableError` saying why there is none."""
    if artifact.runtime not in ("onnxruntime", "onnxruntime-mobile"):
        why = WHY_NOT.get(artifact.runtime, f"{artifact.runtime} exposes no intermediate tensors to exportkit; "
                                            "explain an ONNX artifact of the same model")
        raise NotLocalizableError(artifact.name, why)
    if artifact.runtime == "onnxruntime-mobile" and _fp32_onnx(folder) is None:
        raise NotLocalizableError(artifact.name, "an ORT-format file cannot be edited, so its tensors are exposed in "
                                                 "the fp32 ONNX artifact it is converted from, which this folder "
                                                 "lacks (build with --formats onnx,ort)")
    if artifact.format in ("onnx", "ort"):
        ref = folder.reference_artifact()
        if ref is None:
            raise NotLocalizableError(artifact.name, "the folder has no eager reference (checkpoint) to compare its "
                                                     "layers with")
        return ref
    ref = _fp32_onnx(folder)
    if ref is None:
        raise NotLocalizableError(artifact.name, "its layers are compared with the fp32 ONNX artifact, which this "
                                                 "folder lacks (build with --formats onnx,...)")
    return ref


def _fp32_onnx(folder: ArtifactsFolder) -> Artifact | None:
    return next((a for a in folder.manifest.artifacts if a.format == "onnx"), None)


def _intact(folder: ArtifactsFolder, artifact: Artifact) -> None:
    if why := folder.integrity_problem(artifact):
        raise ManifestError(f"{artifact.name}: {why}; explain compares the files the manifest describes")


def explain_artifact(folder: ArtifactsFolder, name: str, samples: int = DEFAULT_SAMPLES) -> Explanation:
    """Compare every intermediate tensor of artifact ``name`` with its reference on ``samples`` golden inputs."""
    start = time.perf_counter()
    names = [a.name for a in folder.manifest.artifacts]
    if name not in names:
        raise UsageError(f"--artifact {name!r} is not in {folder.path} (it has {', '.join(names)})")
    artifact = folder.manifest.artifact(name)
    reference = reference_for(folder, artifact)
    for art in (artifact, reference):
        _intact(folder, art)
    golden = folder.golden()
    feeds = {spec.name: x[:samples] for spec, x in zip(folder.io.inputs, golden.inputs, strict=True)}
    floor = MIN_SNR_DB[artifact.precision]
    if artifact.runtime == "onnxruntime-mobile":  # exposed in its ONNX source, converted again, run as ORT format
        proto = taps.load(folder.file(_fp32_onnx(folder)))
        pairs = _against_eager(folder, reference, proto, feeds, taps.run_as_ort_format)
        rows = _rows(proto, proto, pairs, floor)
    elif reference.runtime == "eager":
        proto = taps.load(folder.file(artifact))
        pairs = _against_eager(folder, reference, proto, feeds)
        rows = _rows(proto, proto, pairs, floor)
    else:
        proto = taps.load(folder.file(artifact))
        rows, pairs = compare_onnx(proto, taps.load(folder.file(reference)), feeds, floor)
    drift = _tapped_drift(taps.run_file(folder.file(artifact), feeds), pairs)
    first = first_over(rows)
    return Explanation(name, artifact.precision, reference.name, len(next(iter(feeds.values()))), floor,
                       [r.to_dict() for r in rows], first.to_dict() if first else None, drift,
                       time.perf_counter() - start)


Pairs = dict[str, tuple[np.ndarray, np.ndarray]]  # tensor -> (reference, candidate)


def compare_onnx(proto, ref_proto, feeds: dict[str, np.ndarray], floor: float) -> tuple[list[LayerDiff], Pairs]:
    """Layer rows of ONNX graph ``proto`` against ``ref_proto`` (an fp32 graph it was converted from)."""
    pairs = _against_onnx(proto, ref_proto, feeds)
    return _rows(proto, ref_proto, pairs, floor), pairs


def _against_onnx(proto, ref_proto, feeds: dict[str, np.ndarray]) -> Pairs:
    """Tensors both graphs name alike, run in each: converters keep the fp32 graph's tensor names. Where a QDQ
    pair follows a tensor, its dequantized value is the candidate's (:func:`taps.dequantized`)."""
    theirs = taps.float_tensors(ref_proto)
    common = [n for n in taps.float_tensors(proto) if n in theirs]
    seen = taps.dequantized(proto)
    read = {n: seen.get(n, n) for n in common}
    got = taps.run(taps.tapped(proto, read.values()), feeds)
    want = taps.run(taps.tapped(ref_proto, common), feeds)
    return {n: (want[n], got[read[n]]) for n in common if want[n].shape == got[read[n]].shape}


def _against_eager(folder: ArtifactsFolder, reference: Artifact, proto, feeds: dict[str, np.ndarray],
                   run: Callable = taps.run) -> Pairs:
    """The fp32 ONNX file's tensors against the eager modules they were exported from, and its outputs against
    the eager model's; ``run`` runs the tapped graph (as ORT format for the ``ort`` artifact)."""
    module = folder.reference_module(reference)
    found, finals = eager.module_outputs(module, list(feeds.values()))
    by_tensor = eager.onnx_module_map(proto, {path: len(calls) for path, calls in found.items()})
    tensors = [n for n in taps.float_tensors(proto) if n in by_tensor]
    got = run(taps.tapped(proto, tensors), feeds)
    pairs = {n: (found[by_tensor[n][0]][by_tensor[n][1]], got[n]) for n in tensors}
    for out, final in zip((o.name for o in proto.graph.output), finals, strict=False):
        pairs.setdefault(out, (final, got[out]))
    return {n: p for n, p in pairs.items() if p[0].shape == p[1].shape}


def _rows(proto, ref_proto, pairs: Pairs, floor: float) -> list[LayerDiff]:
    """One row per paired tensor in the candidate's graph order, with the error each layer added itself."""
    made_by, ref_made_by = taps.producers(proto), taps.producers(ref_proto)
    modules, qdq = eager.onnx_module_map(ref_proto), taps.dequantized(proto)
    weights = {t.name for t in ref_proto.graph.initializer}
    order = [n for node in proto.graph.node for n in node.output if n in pairs]
    rows: dict[str, LayerDiff] = {}
    for name in order:
        op = ref_made_by[name].op_type if name in ref_made_by else made_by[name].op_type
        if name in made_by and made_by[name].op_type != op:
            op = f"{op} (runs as {made_by[name].op_type})"
        if name in qdq:
            op = f"{op}, int8"
        rows[name] = diff(name, op, modules.get(name, ("", 0))[0], *pairs[name], floor)
        rows[name].weights = [w for w in ref_made_by[name].input if w in weights] if name in ref_made_by else []
    marked = set(rows)
    for name, row in rows.items():
        fed = [rows[u].rel_rms for u in taps.nearest_upstream(proto, name, marked) if u in rows]
        row.added = row.rel_rms - max(fed, default=0.0)
    return list(rows.values())


def _tapped_drift(plain: dict[str, np.ndarray], pairs: Pairs) -> float:
    """Largest difference between the artifact's own outputs (``plain``) and the same outputs in the tapped run
    (see :mod:`export_kit.explain.taps`): not 0 means a fusion the taps prevented changes the numbers."""
    gaps = []
    for name in (n for n in plain if n in pairs):
        a, b = plain[name].astype(np.float64), pairs[name][1].astype(np.float64)
        same = (a == b) | (np.isnan(a) & np.isnan(b))  # NaN in both runs is no drift
        gaps.append(float(np.where(same, 0.0, np.abs(a - b)).max(initial=0.0)))
    return max(gaps, default=0.0)
