"""Accuracy on the whole test split, with the statistics that tell a real change from noise: a Wilson interval,
top-1 agreement with the reference, an exact McNemar test, per-class deltas and scores."""

from __future__ import annotations

import itertools

import numpy as np

from export_kit.errors import first_line
from export_kit.folder.golden import Golden
from export_kit.folder.manifest import Artifact
from export_kit.folder.precision import Tolerance
from export_kit.model.datasets import Split
from export_kit.results import Check, VerifyResult
from export_kit.runners import Runner
from export_kit.verification.checks import CheckSpec, VerifyContext, register_check
from export_kit.verification.metrics import classification_summary
from export_kit.verification.stats import agreement_below, mcnemar_exact, per_class_accuracy, wilson_interval
from export_kit.verification.tolerances import classifier_tolerance

#: The test split is fed in batches of these sizes in turn, so the accuracy figure covers a dynamic batch axis at
#: more than one size (large, to keep the pass fast).
ACCURACY_BATCHES = (256, 199, 128, 255)


def _accuracy_stats(row: VerifyResult, predictions: np.ndarray, golden: Golden, test: Split) -> float:
    """Accuracy with its 95% interval, McNemar against the reference, per-class deltas; returns the drop."""
    ref_correct, correct = golden.test_predictions == test.labels, predictions == test.labels
    row.accuracy, row.reference_accuracy = float(correct.mean()), float(ref_correct.mean())
    row.top1_agreement = float((predictions == golden.test_predictions).mean())
    row.accuracy_ci95 = list(wilson_interval(int(correct.sum()), len(correct)))
    row.mcnemar = mcnemar_exact(ref_correct, correct)
    classes = int(max(test.labels.max(), predictions.max())) + 1
    ours = per_class_accuracy(test.labels, predictions, classes)
    ref = per_class_accuracy(test.labels, golden.test_predictions, classes)
    row.per_class_delta = [None if a is None or r is None else a - r for a, r in zip(ours, ref, strict=True)]
    row.class_metrics = classification_summary(test.labels, predictions, classes)
    drop = 100.0 * (row.reference_accuracy - row.accuracy)
    row.observe("max_accuracy_drop", drop, max)
    row.observe("min_top1_agreement", row.top1_agreement, min)
    return drop


def _judge(row: VerifyResult, predictions: np.ndarray, golden: Golden, test: Split, tol: Tolerance) -> None:
    drop = _accuracy_stats(row, predictions, golden, test)
    problems = []
    if tol.max_accuracy_drop is not None and drop > tol.max_accuracy_drop:
        problems.append(f"accuracy {row.accuracy:.4f} is {drop:.2f} points below the reference "
                        f"{row.reference_accuracy:.4f} (budget {tol.max_accuracy_drop:g}, McNemar p="
                        f"{row.mcnemar['p_value']:.2g})")
    if agreement_below(row.top1_agreement, len(predictions), tol.min_top1_agreement):
        problems.append(f"test-set top-1 agreement {row.top1_agreement:.4f} is significantly below "
                        f"{tol.min_top1_agreement:g}")
    row.add(Check("accuracy", not problems, observed={"accuracy": row.accuracy, "drop_points": drop,
                                                        "top1_agreement": row.top1_agreement},
                  limit=tol.to_dict(), detail="; ".join(problems)))


def _predictions(ctx: VerifyContext, runner: Runner, what: str) -> np.ndarray:
    """Top-1 of the classifier output on the whole test split, each batch read and preprocessed just before it
    runs: a memory-mapped split of any size is never whole in memory, as pixels or as model inputs."""
    from export_kit.progress import images_bar

    test, prep, classifier = ctx.test, ctx.folder.manifest.preprocessing, ctx.folder.classifier
    name, sizes, found, start = runner.io.inputs[0].name, itertools.cycle(ACCURACY_BATCHES), [], 0
    with images_bar() as bar:
        task = bar.add_task(what, total=len(test))
        while start < len(test):
            batch = prep.apply(test.rows(start, start + next(sizes)))
            found.append(runner.run({name: batch})[classifier].argmax(1))
            start += len(batch)
            bar.advance(task, len(batch))
    return np.concatenate(found)


def accuracy(ctx: VerifyContext, artifact: Artifact, runner: Runner, row: VerifyResult) -> None:
    if ctx.test is None:
        return
    try:
        predictions = _predictions(ctx, runner, f"accuracy of {artifact.name} on {runner.target}")
    except Exception as exc:
        row.add(Check("accuracy", False, detail=f"runtime error: {first_line(exc)}"))
        return
    _judge(row, predictions, ctx.golden, ctx.test,
           classifier_tolerance(artifact, ctx.tolerances, ctx.folder.manifest.model_io))


register_check(CheckSpec("accuracy", "target", "accuracy", "with a dataset: accuracy and top-1 agreement on the whole "
                         "test split against the reference, fed in batches of "
                         f"{', '.join(map(str, ACCURACY_BATCHES))} in turn", accuracy))
