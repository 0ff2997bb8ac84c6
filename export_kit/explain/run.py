"""Explain as a step of verify: every artifact whose parity or accuracy failed, within a time budget. (The
``explain`` command, one artifact on demand, is :func:`export_kit.api.explain`.)"""

from __future__ import annotations

import time
from collections.abc import Callable

from export_kit.errors import ExportKitError
from export_kit.explain.core import Explanation, NotLocalizableError, explain_artifact
from export_kit.folder.load import ArtifactsFolder
from export_kit.results import Status, VerifyResult

#: Seconds verify may spend explaining its failed rows; the seed CNN takes under one, a 224x224 network tens.
AUTO_BUDGET_S = 120.0
#: The checks whose failure a layer-by-layer comparison can explain (not integrity, load or the manifest's).
EXPLAINED_CHECKS = ("parity_batch1", "parity_batch32", "parity_batches", "accuracy")


def explain_failures(folder: ArtifactsFolder, rows: list[VerifyResult], budget_s: float = AUTO_BUDGET_S,
                     on_done: Callable[[Explanation], None] = lambda e: None) -> list[Explanation]:
    """One explanation per artifact with a failed parity or accuracy check, until ``budget_s`` is spent; an
    artifact that cannot be localized, or that the budget left out, gets its reason instead of layers.
    ``on_done`` hears of each as it is made."""
    failed = [r.artifact for r in rows
              if r.status == Status.FAILED and set(r.failed_checks()) & set(EXPLAINED_CHECKS)]
    start, found = time.perf_counter(), []
    for name in dict.fromkeys(failed):
        precision = folder.manifest.artifact(name).precision
        if time.perf_counter() - start > budget_s:
            found.append(Explanation(name, precision, "", 0, 0.0, reason=f"verify's explain budget of {budget_s:.0f}"
                                     f" s was spent; run exportkit explain --artifact {name}"))
            continue
        try:
            found.append(explain_artifact(folder, name))
        except NotLocalizableError as exc:
            found.append(Explanation(name, precision, "", 0, 0.0, reason=exc.why))
        except ExportKitError as exc:
            found.append(Explanation(name, precision, "", 0, 0.0, reason=str(exc)))
        on_done(found[-1])
    return found
