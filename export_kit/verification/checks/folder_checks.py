"""Checks of the folder as a whole, done once and shown on every row: the manifest against its golden vectors
and against the reference checkpoint it pins."""

from __future__ import annotations

from dataclasses import replace

import numpy as np

from export_kit.errors import UnavailableError
from export_kit.model.outputs import reference_top1
from export_kit.results import Check
from export_kit.verification.checks import CheckSpec, VerifyContext, register_check


def preprocessing(ctx: VerifyContext) -> list[Check]:
    """The manifest's preprocessing must turn the golden pixels into exactly the inputs the reference saw (a model
    that takes no images has neither)."""
    golden, prep = ctx.golden, ctx.folder.manifest.preprocessing
    if prep is None:
        return []
    recomputed, stored = prep.normalize(golden.images), golden.inputs[0]
    err = float(np.abs(recomputed - stored).max()) if recomputed.shape == stored.shape else np.inf
    ok = err <= 1e-5
    return [Check("preprocessing", ok, observed=err, limit=1e-5,
                  detail="" if ok else f"manifest preprocessing no longer reproduces the golden inputs "
                                       f"(max diff {err:.3g}): mean/std/scale changed after the build")]


def consistency(ctx: VerifyContext) -> list[Check]:
    """The manifest against the reference checkpoint (loaded up front: see ``ArtifactsFolder.reference_meta``)."""
    meta = ctx.folder.reference_meta()
    if meta is None:
        return []
    problems = ctx.folder.checkpoint_mismatches(meta)
    return [Check("consistency", not problems, detail="; ".join(problems) + (
        ": the folder was edited after the build" if problems else ""))]


def _recomputed_predictions(ctx: VerifyContext) -> np.ndarray | None:
    folder, test = ctx.folder, ctx.test
    ref = folder.reference_artifact()
    if test is None or ref is None or folder.integrity_problem(ref):
        return None
    try:
        model = folder.reference_module(ref)
    except UnavailableError:  # its factory is not installed here: the stored predictions are all there is
        return None
    return reference_top1(model, folder.manifest.preprocessing, test, folder.manifest.model_io.classifier)


def reference(ctx: VerifyContext) -> list[Check]:
    """With data: the reference's top-1 recomputed from the checkpoint replaces the stored one in ``ctx.golden``.

    The stored predictions are what accuracy is compared against, so a folder must not be able to choose them;
    a stored set that disagrees beyond near-ties fails every row.
    """
    preds = _recomputed_predictions(ctx)
    if preds is None:
        return []
    stored = ctx.golden.test_predictions
    differ = int((preds != stored).sum()) if len(preds) == len(stored) else -1
    allowed = max(1, len(preds) // 1000)  # near-ties may flip between machines and thread layouts
    ctx.golden = replace(ctx.golden, test_predictions=preds)
    ok = 0 <= differ <= allowed
    return [Check("reference", ok, observed=differ, limit=allowed,
                  detail="" if ok else f"the folder's stored reference predictions differ from its checkpoint's "
                                       f"on {differ if differ >= 0 else 'all'} of {len(preds)} test images")]


register_check(CheckSpec("preprocessing", "folder", "file", "the manifest's mean/std/scale no longer reproduces the "
                         "golden inputs from the golden pixels", preprocessing))
register_check(CheckSpec("consistency", "folder", "file", "the manifest's classes, preprocessing and input shape "
                         "against the reference checkpoint it pins", consistency))
register_check(CheckSpec("reference", "folder", "file", "with a dataset: the stored reference predictions against "
                         "ones recomputed from the checkpoint (at most 0.1% may differ: near-ties)", reference))
