"""Precision classes and the tolerance each is held to. Every exporter declares the class its files belong to,
the manifest records the tolerances (``golden.tolerances``) so the consumers on a device apply the same ones,
and verify judges parity by them.

Tolerances are data: one default per precision class, overridable, and always reported next to the observed
value.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, replace

from export_kit.errors import ManifestError


@dataclass(frozen=True)
class Tolerance:
    """None disables a bound. ``max_accuracy_drop`` is in percentage points of test-set accuracy."""

    max_abs: float | None = None
    min_top1_agreement: float = 1.0
    max_accuracy_drop: float | None = None
    min_cosine: float | None = None

    def with_overrides(self, **values: float | None) -> Tolerance:
        return replace(self, **{k: v for k, v in values.items() if v is not None})

    def to_dict(self) -> dict:
        return asdict(self)


#: Why these numbers: fp32 runtimes reorder float sums, which moves logits of this size by ~1e-6, so 1e-4 leaves
#: two orders of margin while a 1% weight change (~1e-2) still fails. int8 changes logits by design, so it is
#: judged on decisions (top-1 agreement) and on what the user cares about (accuracy), not on logit distance.
#: fp16 keeps about three significant digits, so an absolute bound would depend on the logits' scale: it is held
#: to a tight cosine, near-total agreement and half a point of accuracy instead.
#: bf16 keeps 8 significant bits to fp16's 11, so its rounding error is 8x fp16's: the cosine gap and the
#: disagreement allowed grow accordingly (0.995, 98%) and a point of accuracy may go.
#: The cosine floor (worst sample) is scale-free: an absolute bound alone passes any output of a model whose
#: logits are tiny (randomly initialised networks give ~1e-9), the cosine does not.
DEFAULT_TOLERANCES = {
    "fp32": Tolerance(max_abs=1e-4, min_top1_agreement=1.0, max_accuracy_drop=None, min_cosine=0.9999),
    "fp16": Tolerance(max_abs=None, min_top1_agreement=0.99, max_accuracy_drop=0.5, min_cosine=0.999),
    "int8": Tolerance(max_abs=None, min_top1_agreement=0.97, max_accuracy_drop=1.0, min_cosine=0.95),
    "bf16": Tolerance(max_abs=None, min_top1_agreement=0.98, max_accuracy_drop=1.0, min_cosine=0.995),
}


def default_tolerance(precision: str) -> Tolerance:
    """The tolerance class of ``precision``; an unknown precision is refused, never judged as fp32."""
    if precision not in DEFAULT_TOLERANCES:
        raise ManifestError(f"precision {precision!r} has no tolerance class (known: {', '.join(DEFAULT_TOLERANCES)})")
    return DEFAULT_TOLERANCES[precision]
