"""Explain as a command and as a step of verify: one artifact on demand, or every artifact whose parity or
accuracy failed, within a time budget, with the results in the report (report.md, report.json, a plot each)."""

from __future__ import annotations

import time
from pathlib import Path

from export_kit.access import Access, open_folder
from export_kit.errors import ExportKitError
from export_kit.explain.core import DEFAULT_SAMPLES, Explanation, NotLocalizableError, explain_artifact
from export_kit.explain.extract import check_destination, extract_subgraph
from export_kit.explain.render import headline
from export_kit.folder import ArtifactsFolder
from export_kit.folder_write import Log
from export_kit.results import Status, VerifyResult

#: Seconds verify may spend explaining its failed rows; the seed CNN takes under one, a 224x224 network tens.
AUTO_BUDGET_S = 120.0
#: The checks whose failure a layer-by-layer comparison can explain (not integrity, load or the manifest's).
EXPLAINED_CHECKS = ("parity_batch1", "parity_batch32", "parity_batches", "accuracy")


def explain(out: Path, artifact: str, *, samples: int = DEFAULT_SAMPLES, extract: Path | None = None,
            access: Access | None = None, log: Log = print) -> Explanation:
    """Explain one artifact, add it to the folder's report (replacing an earlier one of the same artifact) and,
    with ``extract``, write the subgraph up to its first diverging layer there."""
    from export_kit.api import report_for
    from export_kit.report_write import write_report

    if extract is not None:
        extract = check_destination(extract)
    folder, report_dir = open_folder(Path(out), access)
    found = explain_artifact(folder, artifact, samples)
    if extract is not None:
        if found.first is None:
            log(f"nothing diverges, so no subgraph was written to {extract}")
        else:
            nodes = extract_subgraph(folder.file(folder.manifest.artifact(artifact)), found.first["tensor"], extract)
            log(f"wrote {extract}: {nodes} nodes, from the inputs to {found.first['tensor']}")
    report = report_for(folder, report_dir)
    report.explanations = [e for e in report.explanations if e.get("artifact") != artifact] + [found.to_dict()]
    write_report(report, report_dir)
    return found


def explain_failures(folder: ArtifactsFolder, rows: list[VerifyResult], budget_s: float = AUTO_BUDGET_S,
                     log: Log = print) -> list[Explanation]:
    """One explanation per artifact with a failed parity or accuracy check, until ``budget_s`` is spent; an
    artifact that cannot be localized, or that the budget left out, gets its reason instead of layers."""
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
        log(f"explain {headline(found[-1])}")
    return found
