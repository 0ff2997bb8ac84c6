"""Parity: the artifact's outputs on the golden vectors (real test images) against the reference's: one image per
call, in batches of :data:`BATCH` (a graph whose batch size was baked in by tracing fails this one), and across
:data:`SPREAD`, odd, prime and larger batch sizes (a graph right at 1 and 32 can be wrong at 61), each held to the
artifact's precision tolerance."""

from __future__ import annotations

from collections.abc import Callable

import numpy as np

from export_kit.errors import first_line
from export_kit.folder.golden import repeated
from export_kit.folder.manifest import Artifact
from export_kit.folder.precision import Tolerance
from export_kit.results import Check, VerifyResult
from export_kit.runners import Runner
from export_kit.verification.checks import CheckSpec, VerifyContext, register_check
from export_kit.verification.compare import Parity, parity
from export_kit.verification.stats import agreement_below
from export_kit.verification.tolerances import tolerance_for

BATCH = 32
SINGLE_SAMPLES = 64
#: Batch sizes the dynamic batch axis is exercised at beyond 1 and :data:`BATCH`: even, odd, prime, and one
#: above 32 (kernels often switch strategy past a power of two). Fixed, so every run checks the same sizes.
SPREAD = (2, 3, 7, 13, 61)


def run_all(runner: Runner, inputs: list[np.ndarray], sizes: tuple[int, ...]) -> list[np.ndarray]:
    """Every output for ``inputs`` (one array per model input, same length) fed in consecutive batches whose
    sizes cycle through ``sizes`` (the last one may be shorter)."""
    names = [spec.name for spec in runner.io.inputs]
    chunks, start, turn = [], 0, 0
    while start < len(inputs[0]):
        size = sizes[turn % len(sizes)]
        out = runner.run({n: x[start:start + size] for n, x in zip(names, inputs, strict=True)})
        chunks.append([out[name] for name in runner.io.outputs])
        start, turn = start + size, turn + 1
    return [np.concatenate([c[k] for c in chunks]) for k in range(len(runner.io.outputs))]


def _judge(p: Parity, tol: Tolerance, classifier: bool) -> list[str]:
    """One output's problems: non-finite values, max abs error, worst cosine; top-1 agreement for the classifier
    only (elsewhere an argmax means nothing)."""
    problems = []
    if p.nonfinite:
        problems.append(f"{p.nonfinite}/{p.samples} outputs are NaN or inf")
    if tol.max_abs is not None and not p.max_abs_err <= tol.max_abs:
        problems.append(f"max abs error {p.max_abs_err:.3g} > {tol.max_abs:g}")
    if tol.min_cosine is not None and not p.cosine >= tol.min_cosine:
        problems.append(f"worst-sample cosine similarity {p.cosine:.6f} < {tol.min_cosine:g}")
    if classifier and agreement_below(p.top1_agreement, p.samples, tol.min_top1_agreement):
        problems.append(f"top-1 agreement {p.top1_agreement:.4f} on {p.samples} samples is significantly below "
                        f"{tol.min_top1_agreement:g}")
    return problems


def _tolerances(ctx: VerifyContext, artifact: Artifact) -> dict[str, Tolerance]:
    """The artifact's tolerance for each output, by name, in output order."""
    return {o.name: tolerance_for(artifact, ctx.tolerances, o.name) for o in ctx.folder.manifest.model_io.outputs}


def _compare(expected: list[np.ndarray], got: list, tols: dict[str, Tolerance],
             classifier: int) -> tuple[dict[str, Parity], list[tuple[str, str]]]:
    """Every output against its expected values: each one's statistics, and (output, problem) for every bound
    it breaks."""
    results = {n: parity(expected[k], got[k]) for k, n in enumerate(tols)}
    return results, [(n, msg) for k, n in enumerate(tols) for msg in _judge(results[n], tols[n], k == classifier)]


def _parity(name: str, ctx: VerifyContext, picks: np.ndarray, produce: Callable[[list[np.ndarray]], list],
            artifact: Artifact, row: VerifyResult) -> None:
    """Run the golden samples ``picks`` through ``produce`` and hold every output, by name, to the artifact's
    tolerance for that output; the row's headline figures are the classifier's, its max abs error the worst of
    all outputs."""
    golden, tols = ctx.golden, _tolerances(ctx, artifact)
    names = list(tols)
    try:
        got = produce([x[picks] for x in golden.inputs])
    except Exception as exc:
        row.add(Check(name, False, detail=f"runtime error: {first_line(exc)}"))
        return
    results, found = _compare([y[picks] for y in golden.outputs], got, tols, golden.classifier)
    problems = [f"{n}: {msg}" if len(names) > 1 else msg for n, msg in found]
    head = results[names[golden.headline]]
    if len(names) == 1:
        observed, limit = head.to_dict(), tols[names[0]].to_dict()
    else:
        observed, limit = {n: r.to_dict() for n, r in results.items()}, {n: t.to_dict() for n, t in tols.items()}
    row.add(Check(name, not problems, observed=observed, limit=limit, detail="; ".join(problems)))
    worst_abs = max(r.max_abs_err for r in results.values())
    row.observe("max_abs", worst_abs, max)
    if golden.classifier is not None:
        row.observe("min_top1_agreement", head.top1_agreement, min)
    row.observe("min_cosine", min(r.cosine for r in results.values()), min)
    if name.endswith(f"batch{BATCH}") or row.max_abs_err is None:
        row.max_abs_err, row.p99_abs_err, row.cosine = worst_abs, head.p99_abs_err, head.cosine
        row.top1_agreement = None if golden.classifier is None else head.top1_agreement


def batch1(ctx: VerifyContext, artifact: Artifact, runner: Runner, row: VerifyResult) -> None:
    picks = np.arange(min(SINGLE_SAMPLES, len(ctx.golden.labels)))
    _parity("parity_batch1", ctx, picks, lambda feed: run_all(runner, feed, (1,)), artifact, row)


def batched(ctx: VerifyContext, artifact: Artifact, runner: Runner, row: VerifyResult) -> None:
    # a golden set smaller than BATCH repeats until one full batch runs: a graph with a batch size baked in must
    # meet a batch of that size, or the check named after it checks nothing
    picks = repeated(np.arange(len(ctx.golden.labels)), BATCH)
    _parity(f"parity_batch{BATCH}", ctx, picks, lambda feed: run_all(runner, feed, (BATCH,)), artifact,
            row)


def spread(ctx: VerifyContext, artifact: Artifact, runner: Runner, row: VerifyResult) -> None:
    total = sum(SPREAD)
    picks = repeated(np.arange(len(ctx.golden.labels)), total)[:total]
    _parity("parity_batches", ctx, picks, lambda feed: run_all(runner, feed, SPREAD), artifact, row)


def axes(ctx: VerifyContext, artifact: Artifact, runner: Runner, row: VerifyResult) -> None:
    """Each stored size of each dynamic axis besides the batch (:mod:`export_kit.model.axes`), in batches of 1 and 3:
    every output against the reference's at that size. One check for all sizes, naming the sizes that failed."""
    if not ctx.golden.axes:
        return
    tols = _tolerances(ctx, artifact)
    problems, observed = [], {}
    for axis_set in ctx.golden.axes:
        label = ",".join(f"{k}={v}" for k, v in sorted(axis_set.sizes.items()))
        try:
            got = run_all(runner, axis_set.inputs, (1, 3))
        except Exception as exc:
            problems.append(f"{label}: runtime error: {first_line(exc)}")
            continue
        results, found = _compare(axis_set.outputs, got, tols, ctx.golden.classifier)
        observed[label] = {n: {"max_abs_err": r.max_abs_err, "cosine": r.cosine} for n, r in results.items()}
        problems += [f"{label} {n}: {msg}" for n, msg in found]
    row.add(Check("parity_axes", not problems, observed=observed, limit={n: t.to_dict() for n, t in tols.items()},
                  detail="; ".join(problems[:3]) + (f"; and {len(problems) - 3} more" if len(problems) > 3 else "")))


register_check(CheckSpec("load", "target", "load", "a file the runtime cannot open"))
register_check(CheckSpec("parity_batch1", "target", "parity", f"outputs of {SINGLE_SAMPLES} golden images, one per "
                         "call, against the reference", batch1))
register_check(CheckSpec(f"parity_batch{BATCH}", "target", "parity", f"all golden images in batches of {BATCH} "
                         "(repeated to one full batch when fewer): catches a batch size baked into the graph", batched))
register_check(CheckSpec("parity_batches", "target", "parity", f"golden images in batches of "
                         f"{', '.join(map(str, SPREAD))}: a dynamic batch axis that is wrong at some sizes only",
                         spread))
register_check(CheckSpec("parity_axes", "target", "parity", "golden inputs with each dynamic axis besides the batch at "
                         "a spread of sizes (its smallest, a prime near half, the traced size's neighbours, near "
                         "twice): a length baked into the graph", axes))
