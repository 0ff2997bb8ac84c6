"""Parity statistics between reference and candidate outputs, judged by the tolerances of
:mod:`export_kit.folder.precision`. Pure numpy. A non-finite output fails whatever the tolerance says."""

from __future__ import annotations

from dataclasses import asdict, dataclass

import numpy as np


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
