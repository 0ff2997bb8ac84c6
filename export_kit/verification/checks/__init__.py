"""The check registry: every verify check is a :class:`CheckSpec` registered by the file that implements it.

verify runs them by scope (once per folder, once per artifact, once per artifact x target), the status table
groups them by ``stage``, and the planted-fault list must hold a fault that each check catches (a test says so).
Adding a check is one file here, its import below, and its fault in :mod:`export_kit.faults.plant`.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

from export_kit.folder.golden import Golden
from export_kit.folder.load import ArtifactsFolder
from export_kit.model.datasets import Split
from export_kit.verification.tolerances import Overrides

SCOPES = ("folder", "artifact", "target")
#: The status table's columns, in order; each check reports under one.
STAGES = ("file", "load", "parity", "accuracy")


@dataclass
class VerifyContext:
    """What checks read: the folder, its golden vectors (test predictions recomputed when possible), the test
    split when accuracy is asked for, and the tolerance overrides."""

    folder: ArtifactsFolder
    golden: Golden
    test: Split | None = None
    tolerances: Overrides | None = None
    #: Each remote target's fingerprint (machine, CPU, runtimes, emulated), by target name, once reached.
    fingerprints: dict = field(default_factory=dict)


@dataclass(frozen=True)
class CheckSpec:
    """``run`` takes (ctx) for folder checks, (ctx, artifact) for artifact checks and (ctx, artifact, runner, row)
    for target checks; ``blocking`` checks stop an artifact's rows before anything loads its file."""

    name: str
    scope: str
    stage: str
    summary: str
    run: Callable | None = field(default=None, compare=False)
    blocking: bool = False


CHECKS: dict[str, CheckSpec] = {}


def register_check(spec: CheckSpec) -> CheckSpec:
    if spec.name in CHECKS:
        raise RuntimeError(f"check {spec.name!r} registered twice")
    if spec.scope not in SCOPES or spec.stage not in STAGES:
        raise RuntimeError(f"check {spec.name!r}: scope must be one of {SCOPES}, stage one of {STAGES}")
    CHECKS[spec.name] = spec
    return spec


def checks_in(scope: str) -> list[CheckSpec]:
    """The runnable checks of ``scope`` in stage order (file, load, parity, accuracy), then registration order:
    a row's headline figures come from the last stage that sets them, whatever order the modules import in."""
    found = [c for c in CHECKS.values() if c.scope == scope and c.run is not None]
    return sorted(found, key=lambda c: STAGES.index(c.stage))


def stage_of(name: str) -> str | None:
    spec = CHECKS.get(name)
    return spec.stage if spec else None


from export_kit.verification.checks import accuracy, files, folder_checks, onnx_graph, parity  # noqa: E402, F401  (registration)
