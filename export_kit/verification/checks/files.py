"""Checks of an artifact's file before anything loads it: its bytes against the manifest, its declared precision
against the format that makes it."""

from __future__ import annotations

from export_kit.folder.manifest import Artifact
from export_kit.results import Check
from export_kit.verification.checks import CheckSpec, VerifyContext, register_check


def integrity(ctx: VerifyContext, artifact: Artifact) -> list[Check]:
    problem = ctx.folder.integrity_problem(artifact)
    return [Check("integrity", problem is None, observed=artifact.sha256[:12], detail=problem or "")]


def precision(ctx: VerifyContext, artifact: Artifact) -> list[Check]:
    """The precision a format produces is the exporter's, not the manifest's to choose: a relabelled int8 file
    would otherwise be judged by int8's looser tolerance."""
    from export_kit.exporters import EXPORTERS

    exporter = EXPORTERS.get(artifact.format)
    expected = exporter.precision_of(artifact) if exporter else artifact.precision
    ok = expected == artifact.precision
    return [Check("precision", ok, observed=artifact.precision, limit=expected,
                  detail="" if ok else f"format {artifact.format} makes {expected} files; the manifest says "
                                       f"{artifact.precision}")]


register_check(CheckSpec("integrity", "artifact", "file", "file missing, resized, or rewritten after the build "
                         "(sha256 against the manifest)", integrity, blocking=True))
register_check(CheckSpec("precision", "artifact", "file", "the precision the manifest declares against the one "
                         "the artifact's format makes", precision))
