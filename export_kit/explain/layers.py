"""Layer-by-layer error between a candidate's intermediate tensors and its reference's. Pure numpy.

Intermediate tensors have every scale (a logit near 10, an activation near 0.01), so an absolute bound cannot
serve all layers: a layer is judged by its signal-to-noise ratio, ``10 log10(sum ref^2 / sum (cand - ref)^2)``,
against a floor per precision class (:data:`MIN_SNR_DB`). New NaN or inf values fail a layer whatever its SNR.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np

from export_kit.results import Record

#: Why these floors: fp32 runtimes differ from eager only by the order of float sums, ~1e-7 relative (about
#: 140 dB), while one weight scaled by 1.01 gives 40 dB; 60 dB sits between with two decades on either side.
#: fp16 rounds each value to 2^-11 relative (66 dB) and its errors add up over layers: below 30 dB (3% RMS
#: error) is past rounding. int8 rounds activations to 1/255 of their calibrated range; activations that use a
#: fraction of it give 20-35 dB per layer, so below 12 dB (a quarter of the signal is error) a layer's output
#: has stopped tracking the reference.
MIN_SNR_DB = {"fp32": 60.0, "fp16": 30.0, "int8": 12.0}


@dataclass
class LayerDiff(Record):
    """One matched tensor. ``snr_db`` None: identical to the reference. ``added`` is this layer's relative RMS
    error minus the largest its matched inputs carried in: the error the layer itself introduced."""

    tensor: str
    op: str
    module: str
    shape: list[int]
    max_abs: float
    cosine: float
    snr_db: float | None
    rel_rms: float
    added: float = 0.0
    nonfinite: int = 0
    over: bool = False
    weights: list[str] = field(default_factory=list)  # the initializers its node reads in the reference graph


def diff(tensor: str, op: str, module: str, reference: np.ndarray, candidate: np.ndarray,
         min_snr_db: float) -> LayerDiff:
    """Compare one tensor over every sample; non-finite candidate values are counted, then left out of the
    other figures (where the reference is finite), so a NaN reads as a NaN and not as a number."""
    ref = reference.astype(np.float64).ravel()
    cand = candidate.astype(np.float64).ravel()
    bad = np.isfinite(ref) & ~np.isfinite(cand)
    keep = np.isfinite(ref) & np.isfinite(cand)
    ref, cand = ref[keep], cand[keep]
    err = cand - ref
    signal, noise = float(np.dot(ref, ref)), float(np.dot(err, err))
    snr = None if noise == 0 else (10 * math.log10(signal / noise) if signal > 0 else -math.inf)
    norms = math.sqrt(signal) * float(np.linalg.norm(cand))
    cosine = float(np.dot(ref, cand) / norms) if norms > 0 else float(noise == 0)
    rel = math.sqrt(noise / signal) if signal > 0 else (0.0 if noise == 0 else math.inf)
    row = LayerDiff(tensor, op, module, list(reference.shape), float(np.abs(err).max(initial=0.0)), cosine, snr, rel,
                    nonfinite=int(bad.sum()))
    row.over = row.nonfinite > 0 or (snr is not None and snr < min_snr_db)
    return row


def first_over(rows: list[LayerDiff]) -> LayerDiff | None:
    """The first layer, in graph order, past the floor: where the divergence starts."""
    return next((r for r in rows if r.over), None)


def costliest(rows: list[LayerDiff], count: int) -> list[LayerDiff]:
    """The ``count`` layers that added the most error themselves (the int8 layers worth keeping in float)."""
    return sorted((r for r in rows if r.added > 0), key=lambda r: r.added, reverse=True)[:count]
