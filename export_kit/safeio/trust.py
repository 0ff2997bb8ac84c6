"""What a folder may make exportkit run: which model factories, and which code-bearing files.

A folder copied from elsewhere is data. Its checkpoint names a factory, and a TorchScript file is a program that
``torch.jit.load`` executes; so a checkpoint may name only factories the user allowed (the training stage's own,
plus ``--model`` / ``--allow-factory``), and a code-bearing file is loaded only when its folder is trusted: signed
by a key the user trusts (every build signs with this machine's key, so "built here" is trusted), or
``--trust-code``. Trust is kept as the sha256 digests the trusted signature pins: a file is trusted only while
its bytes are the ones signed, and a signed checkpoint may name its own factory.
"""

from __future__ import annotations

import math
from collections.abc import Iterable
from dataclasses import dataclass, field

from export_kit.errors import CheckpointError

#: Factories any checkpoint may name: the training stage's architectures.
DEFAULT_FACTORIES = ("train.models:*",)
UNTRUSTED = "not run: untrusted code"


def factory_allowed(spec: str, allowed: Iterable[str]) -> bool:
    """``spec`` matches an allowed ``module:name`` exactly, or a ``module:*`` pattern."""
    module, _, _ = spec.partition(":")
    return any(spec == pattern or (pattern.endswith(":*") and module == pattern[:-2]) for pattern in allowed)


def _plain(value: object, depth: int = 0) -> bool:
    """Numbers, strings, bools and None, in lists and string-keyed dicts: data, never objects."""
    if depth > 8:
        return False
    if value is None or isinstance(value, (bool, int, str)):
        return True
    if isinstance(value, float):
        return math.isfinite(value)
    if isinstance(value, (list, tuple)):
        return all(_plain(v, depth + 1) for v in value)
    if isinstance(value, dict):
        return all(isinstance(k, str) and _plain(v, depth + 1) for k, v in value.items())
    return False


def check_factory(spec: object, kwargs: object, allowed: Iterable[str], source: str) -> None:
    """Refuse a checkpoint that names a factory the user has not allowed, or passes it non-data arguments."""
    allowed = (*DEFAULT_FACTORIES, *allowed)
    if not isinstance(spec, str) or ":" not in spec:
        raise CheckpointError(f"{source} names no model factory (package.module:function), got {spec!r}")
    if not factory_allowed(spec, allowed):
        raise CheckpointError(f"{source} names model factory {spec!r}, which is not allowed (allowed: "
                              f"{', '.join(allowed)}); if you trust that code, pass --allow-factory {spec}")
    if not isinstance(kwargs, dict) or not _plain(kwargs):
        raise CheckpointError(f"{source} gives factory {spec!r} arguments that are not plain data "
                              "(numbers, strings, bools, lists and dicts of them)")


@dataclass(frozen=True)
class Trust:
    """Which factories a folder's checkpoint may name and which code-bearing files may be loaded."""

    factories: tuple[str, ...] = ()
    signed_digests: frozenset[str] = field(default_factory=frozenset)
    all_code: bool = False
    why_not: str = "the folder is not signed by a trusted key"

    def code_allowed(self, sha256: str) -> bool:
        return self.all_code or sha256 in self.signed_digests

    def untrusted_reason(self) -> str:
        return (f"{UNTRUSTED} ({self.why_not}; trust it with --trust-key KEY.pub for a folder signed elsewhere, "
                "or --trust-code)")
