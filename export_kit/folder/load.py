"""An artifacts folder as the commands see it: the manifest, its files checked against their hashes, runners,
and the trust it earned (:mod:`export_kit.safeio.trust`): what code its files may make exportkit run."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from export_kit.errors import ManifestError, UnavailableError, UntrustedCodeError
from export_kit.folder.golden import GOLDEN_NAME, Golden
from export_kit.folder.manifest import Artifact, Manifest, load_manifest, resolve_inside
from export_kit.runners import RUNTIMES, IOSpec, Runner, Target, TensorSpec, open_runner
from export_kit.safeio.atomic import sha256_file
from export_kit.safeio.limits import MAX_GOLDEN
from export_kit.safeio.trust import Trust


@dataclass
class ArtifactsFolder:
    path: Path
    manifest: Manifest
    trust: Trust = field(default_factory=Trust)
    _digests: dict = field(default_factory=dict, repr=False)

    @classmethod
    def load(cls, path: Path, trust: Trust | None = None) -> ArtifactsFolder:
        return cls(Path(path), load_manifest(Path(path)), trust or Trust())

    def digest(self, path: Path) -> str:
        """sha256 of a file, hashed once while its size and modification time stay the same (integrity, trust
        and the reference all ask for the same files)."""
        st = path.stat()
        key = (str(path), st.st_size, st.st_mtime_ns)
        if key not in self._digests:
            self._digests[key] = sha256_file(path)
        return self._digests[key]

    @property
    def input_shape(self) -> tuple[int, ...]:
        """The first input's per-sample shape (CxHxW for a model fed NCHW images, HxWxC for NHWC)."""
        return self.manifest.model_io.inputs[0].shape

    @property
    def image_chw(self) -> tuple[int, ...]:
        """(C, H, W) of the image input, whatever its layout."""
        prep = self.manifest.preprocessing
        return prep.chw(self.input_shape) if prep else self.input_shape

    @property
    def image_shape(self) -> tuple[int, ...] | None:
        """(H, W, C) of the golden pixels, or None for a model that takes no images."""
        if self.manifest.preprocessing is None:
            return None
        channels, height, width = self.image_chw
        return height, width, channels

    def file(self, artifact: Artifact) -> Path:
        return resolve_inside(self.path, artifact.path)

    def integrity_problem(self, artifact: Artifact) -> str | None:
        """Why a file of the artifact no longer matches the manifest (missing, resized, rewritten), or None when
        it and every companion file are intact."""
        expected = [(artifact.path, artifact.bytes, artifact.sha256),
                    *((f["path"], f["bytes"], f["sha256"]) for f in artifact.files)]
        for rel, size, digest in expected:
            path = resolve_inside(self.path, rel)
            if not path.is_file():
                return f"{rel} is missing"
            if path.stat().st_size != size:
                return f"{rel} has {path.stat().st_size} bytes, the manifest says {size}"
            if self.digest(path) != digest:
                return f"{rel} sha256 differs from the manifest: the file changed after the build"
        return None

    def golden(self) -> Golden:
        rel = self.manifest.golden.get("path", GOLDEN_NAME)
        count = self.manifest.golden.get("count")
        if not isinstance(count, int) or isinstance(count, bool) or not 0 < count <= MAX_GOLDEN:
            raise ManifestError(f"manifest golden count must be 1 to {MAX_GOLDEN}, got {count!r}; rebuild the folder")
        return Golden.load(resolve_inside(self.path, rel), count, self.manifest.model_io, self.image_shape)

    def golden_problem(self) -> str | None:
        rel = self.manifest.golden.get("path", GOLDEN_NAME)
        path = resolve_inside(self.path, rel)
        if not path.is_file():
            return f"{rel} is missing"
        if sha256_file(path) != self.manifest.golden.get("sha256"):
            return f"{rel} sha256 differs from the manifest"
        return None

    def runner(self, artifact: Artifact, target: Target, threads: int | None = None,
               options: dict | None = None) -> Runner:
        """A runner for ``artifact`` on ``target``; the eager reference is rebuilt from its checkpoint.

        A file whose loader runs code is opened only when the trust covers its bytes as they are now.
        """
        module = None
        if artifact.runtime == "eager":
            module = self.reference_module(artifact)
        elif RUNTIMES[artifact.runtime].runs_code and not self.trust.code_allowed(self.digest(self.file(artifact))):
            raise UntrustedCodeError(self.trust.untrusted_reason())
        return open_runner(target, self.io, path=self.file(artifact), module=module, threads=threads,
                           options=options)

    @property
    def io(self) -> IOSpec:
        """The model's named inputs and outputs, as the manifest declares them."""
        io = self.manifest.model_io
        return IOSpec(tuple(TensorSpec(i.name, i.shape, i.dtype, i.dims) for i in io.inputs),
                      tuple(o.name for o in io.outputs))

    @property
    def classifier(self) -> str | None:
        """The name of the output whose logits accuracy and top-1 agreement are judged on; None for a model
        verified by parity alone."""
        io = self.manifest.model_io
        return None if io.classifier is None else io.outputs[io.classifier].name

    def reference_artifact(self) -> Artifact | None:
        return next((a for a in self.manifest.artifacts if a.runtime == "eager"), None)

    def reference_module(self, artifact: Artifact, with_meta: bool = False):
        """The eager model, from a checkpoint naming an allowed factory (or pinned by a trusted signature)."""
        from export_kit.model.spec import load_checkpoint

        path = self.file(artifact)
        signed = self.trust.code_allowed(self.digest(path)) if path.is_file() else False
        model, meta = load_checkpoint(path, self.trust.factories, any_factory=signed)
        return (model, meta) if with_meta else model

    def reference_meta(self) -> dict | None:
        """Load the intact reference up front: an unloadable or disallowed one is the folder's error (exit 3).
        None when there is none, its file fails integrity (its row says so), or its factory is not installed."""
        ref = self.reference_artifact()
        if ref is None or self.integrity_problem(ref):
            return None
        try:
            return self.reference_module(ref, with_meta=True)[1]
        except UnavailableError:
            return None

    def checkpoint_mismatches(self, meta: dict) -> list[str]:
        """Where the manifest does not describe the model its checkpoint holds (classes, preprocessing, input)."""
        from export_kit.model.preprocessing import Preprocessing

        m = self.manifest
        found = {"classes": list(m.classes), "preprocessing": m.preprocessing.to_dict() if m.preprocessing else None,
                 "input_shape": list(self.input_shape), "io": m.model_io.to_dict()}
        problems = []
        for key, value in found.items():
            expected = meta.get(key)
            if key == "preprocessing" and isinstance(expected, dict):
                expected = Preprocessing.from_dict(expected).to_dict()
            if expected is not None and expected != value:
                problems.append(f"manifest {key} differs from the reference checkpoint's")
        return problems
