"""Statistics that tell a real accuracy change from noise. Pure Python/numpy, no SciPy.

- Wilson score interval for an accuracy (better than the normal approximation near 0 or 1).
- Exact McNemar test on paired per-image correctness: only images where the reference and the artifact
  disagree on correctness carry information, and under "no difference" each of those goes either way with
  probability 1/2.
"""

from __future__ import annotations

import math

import numpy as np

Z95 = 1.959963984540054


def wilson_interval(correct: int, total: int, z: float = Z95) -> tuple[float, float]:
    if total <= 0:
        return (0.0, 1.0)
    p = correct / total
    denom = 1 + z * z / total
    centre = (p + z * z / (2 * total)) / denom
    half = z * math.sqrt(p * (1 - p) / total + z * z / (4 * total * total)) / denom
    return (max(0.0, centre - half), min(1.0, centre + half))


def _log_binom_pmf(k: int, n: int) -> float:
    return math.lgamma(n + 1) - math.lgamma(k + 1) - math.lgamma(n - k + 1) - n * math.log(2)


def mcnemar_exact(ref_correct: np.ndarray, cand_correct: np.ndarray) -> dict:
    """Two-sided exact McNemar p-value and the discordant counts (reference-only right, artifact-only right)."""
    ref_only = int((ref_correct & ~cand_correct).sum())
    cand_only = int((cand_correct & ~ref_correct).sum())
    n = ref_only + cand_only
    if n == 0:
        return {"ref_only_correct": 0, "artifact_only_correct": 0, "p_value": 1.0}
    k = min(ref_only, cand_only)
    tail = sum(math.exp(_log_binom_pmf(i, n)) for i in range(k + 1))
    return {"ref_only_correct": ref_only, "artifact_only_correct": cand_only, "p_value": min(1.0, 2 * tail)}


def per_class_accuracy(labels: np.ndarray, predictions: np.ndarray, num_classes: int) -> list[float | None]:
    out: list[float | None] = []
    for c in range(num_classes):
        mask = labels == c
        out.append(float((predictions[mask] == c).mean()) if mask.any() else None)
    return out


def agreement_below(agreement: float, samples: int, budget: float) -> bool:
    """True when the observed agreement is below ``budget`` beyond sampling noise (95% Wilson upper bound).

    A budget of 1.0 still fails on a single disagreement; a 97% budget is not declared broken by 3 of 64.
    """
    agreed = round(agreement * samples)
    return agreed < samples and wilson_interval(agreed, samples)[1] < budget
