"""Parity statistics between reference and candidate logits, and the tolerances they are judged by. Pure numpy.

Tolerances are data: one default per precision class, overridable, and always reported next to the observed
value. A non-finite output fails whatever the tolerance says.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, replace

import numpy as np


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
        from export_kit.errors import ManifestError

        raise ManifestError(f"precision {precision!r} has no tolerance class (known: {', '.join(DEFAULT_TOLERANCES)})")
    return DEFAULT_TOLERANCES[precision]


@dataclass
class Parity:
    samples: int
    max_abs_err: float
    p99_abs_err: float
    cosine: float
    top1_agreement: float
    nonfinite: int

    def to_dict(self) -> dict:
        return asdict(self)


def parity(reference: np.ndarray, candidate: np.ndarray) -> Parity:
    """Compare two ``(N, ...)`` output arrays sample by sample (each sample flattened; for ``(N, classes)`` logits,
    top-1 agreement is meaningful). ``cosine`` is the worst per-sample cosine similarity."""
    if reference.shape != candidate.shape:
        raise ValueError(f"shape mismatch: reference {reference.shape}, candidate {candidate.shape}")
    ref = reference.astype(np.float64).reshape(len(reference), -1)
    cand = candidate.astype(np.float64).reshape(len(candidate), -1)
    finite = np.isfinite(cand).all(axis=1)
    nonfinite = int((~finite).sum())
    if not finite.any():
        return Parity(len(ref), float("inf"), float("inf"), float("nan"), 0.0, nonfinite)
    err = np.abs(ref[finite] - cand[finite])
    dots = (ref[finite] * cand[finite]).sum(1)
    norms = np.linalg.norm(ref[finite], axis=1) * np.linalg.norm(cand[finite], axis=1)
    cosine = float(np.min(dots / np.maximum(norms, 1e-30)))
    agree = (ref.argmax(1) == cand.argmax(1)) & finite
    max_abs = float(err.max()) if nonfinite == 0 else float("inf")
    return Parity(len(ref), max_abs, float(np.quantile(err, 0.99)), cosine, float(agree.mean()), nonfinite)
