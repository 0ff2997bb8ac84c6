"""An artifacts folder as the commands see it: the manifest, its files checked against their hashes, runners."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from export_kit.errors import UnavailableError
from export_kit.fileio import sha256_file
from export_kit.golden import GOLDEN_NAME, Golden
from export_kit.manifest import Artifact, Manifest, load_manifest, resolve_inside
from export_kit.runners import Runner, Target, open_runner


@dataclass
class ArtifactsFolder:
    path: Path
    manifest: Manifest

    @classmethod
    def load(cls, path: Path) -> ArtifactsFolder:
        return cls(Path(path), load_manifest(Path(path)))

    @property
    def input_shape(self) -> tuple[int, ...]:
        return tuple(int(d) for d in self.manifest.input["shape"][1:])

    def file(self, artifact: Artifact) -> Path:
        return resolve_inside(self.path, artifact.path)

    def integrity_problem(self, artifact: Artifact) -> str | None:
        """Why the file no longer matches the manifest (missing, resized, rewritten), or None when intact."""
        path = self.file(artifact)
        if not path.is_file():
            return f"{artifact.path} is missing"
        size = path.stat().st_size
        if size != artifact.bytes:
            return f"{artifact.path} has {size} bytes, the manifest says {artifact.bytes}"
        if sha256_file(path) != artifact.sha256:
            return f"{artifact.path} sha256 differs from the manifest: the file changed after the build"
        return None

    def golden(self) -> Golden:
        rel = self.manifest.golden.get("path", GOLDEN_NAME)
        return Golden.load(resolve_inside(self.path, rel))

    def golden_problem(self) -> str | None:
        rel = self.manifest.golden.get("path", GOLDEN_NAME)
        path = resolve_inside(self.path, rel)
        if not path.is_file():
            return f"{rel} is missing"
        if sha256_file(path) != self.manifest.golden.get("sha256"):
            return f"{rel} sha256 differs from the manifest"
        return None

    def runner(self, artifact: Artifact, target: Target, threads: int | None = None) -> Runner:
        """A runner for ``artifact`` on ``target``; the eager reference is rebuilt from its checkpoint."""
        module = None
        if artifact.runtime == "eager":
            module = self.reference_module(artifact)
        return open_runner(target, path=self.file(artifact), module=module, input_shape=self.input_shape,
                           threads=threads)

    def reference_module(self, artifact: Artifact):
        from export_kit.errors import ExportKitError
        from export_kit.modelspec import load_checkpoint

        try:
            model, _ = load_checkpoint(self.file(artifact))
        except ExportKitError as exc:
            raise UnavailableError(f"eager reference not loadable here: {exc}") from None
        return model
