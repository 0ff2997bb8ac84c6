"""Parity: the artifact's outputs on the golden vectors (real test images) against the reference's: one image per
call, in batches of :data:`BATCH` (a graph whose batch size was baked in by tracing fails this one), and across
:data:`SPREAD`, odd, prime and larger batch sizes (a graph right at 1 and 32 can be wrong at 61), each held to the
artifact's precision tolerance."""

from __future__ import annotations

from collections.abc import Callable

import numpy as np

from export_kit.checks import CheckSpec, VerifyContext, register_check
from export_kit.compare import Tolerance, parity
from export_kit.errors import first_line
from export_kit.golden import repeated
from export_kit.manifest import Artifact
from export_kit.results import Check, VerifyResult
from export_kit.runners import Runner
from export_kit.stats import agreement_below
from export_kit.tolerances import tolerance_for

BATCH = 32
SINGLE_SAMPLES = 64
#: Batch sizes the dynamic batch axis is exercised at beyond 1 and :data:`BATCH`: even, odd, prime, and one
#: above 32 (kernels often switch strategy past a power of two). Fixed, so every run checks the same sizes.
SPREAD = (2, 3, 7, 13, 61)


def run_batched(runner: Runner, inputs: np.ndarray, batch: int) -> np.ndarray:
    return run_sizes(runner, inputs, (batch,))


def run_sizes(runner: Runner, inputs: np.ndarray, sizes: tuple[int, ...]) -> np.ndarray:
    """Outputs for ``inputs`` fed in consecutive batches whose sizes cycle through ``sizes`` (the last one may
    be shorter)."""
    outputs, start, turn = [], 0, 0
    while start < len(inputs):
        size = sizes[turn % len(sizes)]
        outputs.append(runner.run_one(inputs[start:start + size]))
        start, turn = start + size, turn + 1
    return np.concatenate(outputs)


def _parity(name: str, reference: np.ndarray, produce: Callable[[], np.ndarray], tol: Tolerance,
                  row: VerifyResult) -> None:
    try:
        got = produce()
    except Exception as exc:
        row.add(Check(name, False, detail=f"runtime error: {first_line(exc)}"))
        return
    p = parity(reference, got)
    problems = []
    if p.nonfinite:
        problems.append(f"{p.nonfinite}/{p.samples} outputs are NaN or inf")
    if tol.max_abs is not None and not p.max_abs_err <= tol.max_abs:
        problems.append(f"max abs error {p.max_abs_err:.3g} > {tol.max_abs:g}")
    if tol.min_cosine is not None and not p.cosine >= tol.min_cosine:
        problems.append(f"worst-sample cosine similarity {p.cosine:.6f} < {tol.min_cosine:g}")
    if agreement_below(p.top1_agreement, p.samples, tol.min_top1_agreement):
        problems.append(f"top-1 agreement {p.top1_agreement:.4f} on {p.samples} images is significantly below "
                        f"{tol.min_top1_agreement:g}")
    row.add(Check(name, not problems, observed=p.to_dict(), limit=tol.to_dict(), detail="; ".join(problems)))
    row.observe("max_abs", p.max_abs_err, max)
    row.observe("min_top1_agreement", p.top1_agreement, min)
    row.observe("min_cosine", p.cosine, min)
    if name.endswith(f"batch{BATCH}") or row.max_abs_err is None:
        row.max_abs_err, row.p99_abs_err, row.cosine, row.top1_agreement = (
            p.max_abs_err, p.p99_abs_err, p.cosine, p.top1_agreement)


def batch1(ctx: VerifyContext, artifact: Artifact, runner: Runner, row: VerifyResult) -> None:
    few = ctx.golden.inputs[:SINGLE_SAMPLES]
    _parity("parity_batch1", ctx.golden.logits[:len(few)], lambda: run_batched(runner, few, 1),
            tolerance_for(artifact, ctx.tolerances), row)


def batched(ctx: VerifyContext, artifact: Artifact, runner: Runner, row: VerifyResult) -> None:
    # a golden set smaller than BATCH repeats until one full batch runs: a graph with a batch size baked in must
    # meet a batch of that size, or the check named after it checks nothing
    inputs, logits = repeated(ctx.golden.inputs, BATCH), repeated(ctx.golden.logits, BATCH)
    _parity(f"parity_batch{BATCH}", logits, lambda: run_batched(runner, inputs, BATCH),
            tolerance_for(artifact, ctx.tolerances), row)


def spread(ctx: VerifyContext, artifact: Artifact, runner: Runner, row: VerifyResult) -> None:
    total = sum(SPREAD)
    inputs, logits = repeated(ctx.golden.inputs, total)[:total], repeated(ctx.golden.logits, total)[:total]
    _parity("parity_batches", logits, lambda: run_sizes(runner, inputs, SPREAD),
            tolerance_for(artifact, ctx.tolerances), row)


register_check(CheckSpec("load", "target", "load", "a file the runtime cannot open"))
register_check(CheckSpec("parity_batch1", "target", "parity", f"outputs of {SINGLE_SAMPLES} golden images, one per "
                         "call, against the reference", batch1))
register_check(CheckSpec(f"parity_batch{BATCH}", "target", "parity", f"all golden images in batches of {BATCH} "
                         "(repeated to one full batch when fewer): catches a batch size baked into the graph", batched))
register_check(CheckSpec("parity_batches", "target", "parity", f"golden images in batches of "
                         f"{', '.join(map(str, SPREAD))}: a dynamic batch axis that is wrong at some sizes only",
                         spread))
