"""The artifacts folder's table of contents: what each file is, how to feed it, and how to check it is intact.

``manifest.json`` is written last by ``build``, so its presence means the folder is complete. Every path in it is
relative to the folder and is checked to stay inside it: a manifest is input, and input can be hostile.
"""

from __future__ import annotations

import functools
import json
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from export_kit.errors import ManifestError
from export_kit.model.io import InputSpec, ModelIO
from export_kit.model.outputs import OutputSpec
from export_kit.model.preprocessing import Preprocessing
from export_kit.safeio.atomic import sha256_file, write_json
from export_kit.safeio.limits import check_sample_shape, read_json

SCHEMA_VERSION = 1
MANIFEST_NAME = "manifest.json"
SCHEMA_PATH = Path(__file__).with_name("schema") / f"manifest-v{SCHEMA_VERSION}.schema.json"


@dataclass
class Artifact:
    """One exported file. ``name`` is unique in a folder; ``format`` is the exporter that made it."""

    name: str
    format: str
    path: str
    runtime: str
    precision: str
    sha256: str = ""
    bytes: int = 0
    opset: int | None = None
    details: dict[str, Any] = field(default_factory=dict)
    files: list[dict[str, Any]] = field(default_factory=list)  # companions it loads with: path, sha256, bytes

    @property
    def paths(self) -> list[str]:
        """Every file the artifact is made of: its own, then its companions."""
        return [self.path, *(f["path"] for f in self.files)]

    @property
    def total_bytes(self) -> int:
        """What the artifact weighs on disk, companions included."""
        return self.bytes + sum(int(f.get("bytes", 0)) for f in self.files)

    def describe(self, folder: Path) -> None:
        """Fill in the sha256 and size of the artifact's file and of each companion, as they are in ``folder``."""
        self.sha256, self.bytes = describe_file(folder, self.path)
        for entry in self.files:
            entry["sha256"], entry["bytes"] = describe_file(folder, entry["path"])

    @classmethod
    def from_dict(cls, data: dict) -> Artifact:
        """An entry the manifest schema has already checked (types, required fields)."""
        known = {f for f in cls.__dataclass_fields__}
        return cls(**{k: v for k, v in data.items() if k in known})


@dataclass
class Manifest:
    """``input``/``output`` describe the first input and the classifier output (what image apps read);
    ``inputs``/``outputs`` every one of them (:mod:`export_kit.model.io`); ``preprocessing`` is None for a model
    that takes no images."""

    input: dict[str, Any]
    output: dict[str, Any]
    preprocessing: Preprocessing | None
    classes: list[str]
    artifacts: list[Artifact] = field(default_factory=list)
    model: dict[str, Any] = field(default_factory=dict)
    golden: dict[str, Any] = field(default_factory=dict)
    failures: list[dict[str, str]] = field(default_factory=list)
    runtime_settings: dict[str, dict[str, dict]] = field(default_factory=dict)  # written by bench --tune
    inputs: list[dict[str, Any]] = field(default_factory=list)
    outputs: list[dict[str, Any]] = field(default_factory=list)
    schema_version: int = SCHEMA_VERSION

    def to_dict(self) -> dict:
        data = asdict(self)
        data["preprocessing"] = self.preprocessing.to_dict() if self.preprocessing else None
        return data

    @property
    def model_io(self) -> ModelIO:
        """Every input and output; a folder built before ``inputs``/``outputs`` existed has one of each."""
        inputs = self.inputs or [{**self.input, "domain": [0.0, 1.0]}]
        outputs = self.outputs or [{**self.output, "classifier": True}]
        try:
            io = ModelIO(tuple(InputSpec.from_dict({"name": "input", "dtype": "float32", **i}) for i in inputs),
                         tuple(OutputSpec.from_dict({"name": "logits", **o}) for o in outputs))
        except (KeyError, TypeError, ValueError) as exc:
            raise ManifestError(f"manifest inputs/outputs are malformed: {exc}") from None
        return io

    @classmethod
    def from_dict(cls, data: Any) -> Manifest:
        if not isinstance(data, dict):
            raise ManifestError(f"manifest must be a JSON object, got {type(data).__name__}")
        version = data.get("schema_version")
        if version != SCHEMA_VERSION:
            raise ManifestError(f"manifest schema_version {version!r} is not supported (this exportkit reads "
                                f"{SCHEMA_VERSION}); rebuild the folder with this version")
        check_schema(data)
        try:
            prep = data["preprocessing"]
            manifest = cls(input=dict(data["input"]), output=dict(data["output"]),
                           preprocessing=None if prep is None else Preprocessing.from_dict(prep),
                           classes=[str(c) for c in data["classes"]],
                           artifacts=[Artifact.from_dict(a) for a in data.get("artifacts", [])],
                           model=dict(data.get("model", {})), golden=dict(data.get("golden", {})),
                           failures=list(data.get("failures", [])),
                           runtime_settings=dict(data.get("runtime_settings", {})),
                           inputs=list(data.get("inputs", [])), outputs=list(data.get("outputs", [])))
        except (KeyError, TypeError, ValueError) as exc:
            raise ManifestError(f"manifest is missing or mistypes a field: {exc}") from None
        manifest.check()
        return manifest

    def check(self) -> None:
        """What the schema cannot say: sample shapes that fit in memory, one classifier, unique artifact names."""
        example = self.input.get("example_shape", self.input["shape"])  # named axes at their traced size
        check_sample_shape(tuple(example[1:]), "manifest input shape", ManifestError)
        io = self.model_io
        for spec in io.outputs:  # golden files are sized from these shapes: they are bounded like inputs
            check_sample_shape(spec.shape, f"manifest output {spec.name!r} shape", ManifestError)
        if self.preprocessing is not None and len(io.inputs[0].shape) != 3:
            raise ManifestError("manifest has image preprocessing but its first input is not CxHxW")
        first, chosen = io.inputs[0], io.outputs[io.headline]
        if ([self.input.get("name", first.name), list(example[1:]), self.input.get("dtype", first.dtype)]
                != [first.name, list(first.shape), first.dtype]):
            raise ManifestError("manifest 'input' disagrees with the first of its 'inputs'")
        if self.output.get("name", chosen.name) != chosen.name:
            raise ManifestError("manifest 'output' is not the output its 'outputs' mark as the classifier (the "
                                "first, for a model without one)")
        if len(self.classes) != io.classes:
            raise ManifestError(f"manifest lists {len(self.classes)} class names for a classifier output of width "
                                f"{io.classes}")
        names = [a.name for a in self.artifacts]
        dupes = sorted({n for n in names if names.count(n) > 1})
        if dupes:
            raise ManifestError(f"manifest lists artifact name(s) {dupes} more than once; names must be unique")

    def artifact(self, name: str) -> Artifact:
        for art in self.artifacts:
            if art.name == name:
                return art
        raise ManifestError(f"no artifact named {name!r}; the manifest lists {[a.name for a in self.artifacts]}")

    def write(self, folder: Path) -> Path:
        path = Path(folder) / MANIFEST_NAME
        write_json(path, self.to_dict())
        return path


@functools.cache
def schema() -> dict:
    """The manifest's JSON Schema (``export_kit/folder/schema/manifest-v1.schema.json``), shared with other readers."""
    return json.loads(SCHEMA_PATH.read_text(encoding="utf-8"))


def check_schema(data: dict) -> None:
    """Refuse a manifest that does not conform to the schema, naming the first place it breaks."""
    import jsonschema

    error = jsonschema.exceptions.best_match(jsonschema.Draft202012Validator(schema()).iter_errors(data))
    if error is not None:
        where = "/".join(str(p) for p in error.absolute_path) or "(top level)"
        raise ManifestError(f"manifest does not fit its schema at {where}: {error.message[:200]}")


def load_manifest(folder: Path) -> Manifest:
    folder = Path(folder)
    path = folder / MANIFEST_NAME
    if not folder.is_dir():
        raise ManifestError(f"artifacts folder {folder} does not exist; run `exportkit build --out {folder}` first")
    if not path.is_file():
        raise ManifestError(f"{folder} has no {MANIFEST_NAME}: it was never built, or its build did not finish; "
                            f"run `exportkit build --out {folder}`")
    return Manifest.from_dict(read_json(path, ManifestError))


def resolve_inside(folder: Path, relpath: str) -> Path:
    """Resolve a manifest path, refusing absolute paths, ``..`` and symlinks that lead out of ``folder``."""
    if not isinstance(relpath, str) or not relpath or Path(relpath).is_absolute() or "\0" in relpath:
        raise ManifestError(f"manifest path {relpath!r} must be relative to the artifacts folder")
    root = Path(folder).resolve()
    target = (root / relpath).resolve()
    if not target.is_relative_to(root):
        raise ManifestError(f"manifest path {relpath!r} points outside the artifacts folder {folder}")
    return target


def describe_file(folder: Path, relpath: str) -> tuple[str, int]:
    """sha256 and size of a file in the folder, for the manifest."""
    path = resolve_inside(folder, relpath)
    return sha256_file(path), path.stat().st_size
