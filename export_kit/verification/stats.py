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


#: Bootstrap resamples for latency intervals: enough that the 2.5th/97.5th percentiles move by well under the
#: spread between worker processes, cheap next to the seconds each worker takes.
BOOTSTRAP = 4000


def _resampled_medians(data: np.ndarray, rng: np.random.Generator, resamples: int) -> np.ndarray:
    """The median of each of ``resamples`` bootstrap resamples of ``data`` (drawn with replacement)."""
    return np.median(data[rng.integers(0, len(data), (resamples, len(data)))], axis=1)


def bootstrap_median_ci(values: list[float], resamples: int = BOOTSTRAP, seed: int = 0) -> tuple[float, float]:
    """Percentile-bootstrap 95% interval of the median of ``values`` (one value per worker process). The seed is
    fixed so the same samples always give the same interval."""
    medians = _resampled_medians(np.asarray(values, dtype=np.float64), np.random.default_rng(seed), resamples)
    return float(np.percentile(medians, 2.5)), float(np.percentile(medians, 97.5))


def ratio_ci(new: list[float], old: list[float], *, paired: bool, resamples: int = BOOTSTRAP, seed: int = 0,
             confidence: float = 0.95) -> tuple[float, float, float]:
    """Median ratio new/old and its percentile-bootstrap interval (95% unless ``confidence`` says otherwise).

    Paired (both measured in the same worker processes): the per-process ratios are resampled, so whatever made
    one process slow cancels. Unpaired (a saved baseline): each side is resampled on its own and the ratio of
    medians taken, so the interval carries both runs' spread between processes.
    """
    a, b = np.asarray(new, dtype=np.float64), np.asarray(old, dtype=np.float64)
    rng = np.random.default_rng(seed)
    if paired:
        boot, point = _resampled_medians(a / b, rng, resamples), float(np.median(a / b))
    else:
        boot = _resampled_medians(a, rng, resamples) / _resampled_medians(b, rng, resamples)
        point = float(np.median(a) / np.median(b))
    tail = 50 * (1 - confidence)
    return point, float(np.percentile(boot, tail)), float(np.percentile(boot, 100 - tail))


def latency_verdict(point: float, low: float, high: float, threshold: float, samples: int) -> tuple[str, int | None]:
    """``slower`` / ``faster`` when the ratio's interval lies wholly above / below 1; ``no change`` when it lies
    inside [1/(1+threshold), 1+threshold]; else ``too noisy``, with the samples per side that would shrink the
    interval enough to decide (its width falls as 1/sqrt(n))."""
    if low > 1.0:
        return "slower", None
    if high < 1.0:
        return "faster", None
    band = math.log1p(threshold)
    if -band <= math.log(low) and math.log(high) <= band:
        return "no change", None
    half = (math.log(high) - math.log(low)) / 2
    distance = max(abs(math.log(point)), band - abs(math.log(point)))
    return "too noisy", math.ceil(samples * (half / distance) ** 2) if distance > 0 else None
