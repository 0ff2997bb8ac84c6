"""``exportkit explain``: kept apart from :mod:`export_kit.cli.app` so that file stays a list of the pipeline's
commands."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from export_kit import errors
from export_kit.cli.support import AllowFactory, Folder, ReportDir, TrustCode, TrustKeys, access_from, console, log


def explain(
    artifact: Annotated[str, typer.Option(help="the artifact's name in the manifest, e.g. int8-static")],
    artifacts: Folder = Path("artifacts"),
    samples: Annotated[int, typer.Option(min=1, max=256, help="golden samples run through both graphs")] = 16,
    extract: Annotated[Path | None, typer.Option(help="write the ONNX subgraph from the inputs to the first "
                                                     "diverging tensor here, for a bug report")] = None,
    trust_key: TrustKeys = None,
    trust_code: TrustCode = False,
    allow_factory: AllowFactory = None,
    report_dir: ReportDir = None,
) -> None:
    """Find the first layer where an ONNX artifact departs from its reference (the eager model for fp32 ONNX, the
    fp32 ONNX file for fp16 and int8): per layer SNR, cosine, max abs error and NaN/inf, in graph order. Exit 1
    when a layer is past its precision's floor."""
    from rich.table import Table

    from export_kit.api import explain as run
    from export_kit.report.explanation import HEADER, headline, table_rows

    found = run(artifacts, artifact, samples=samples, extract=extract,
                access=access_from(trust_key, trust_code, allow_factory, report_dir), log=log)
    table = Table(*HEADER, title=f"{artifact} against {found.reference}")
    for row in table_rows(found):
        table.add_row(*(c.replace("**", "") for c in row), style="red" if row[-1] else None)
    console().print(table)
    log(headline(found))
    log(f"report: {Path(report_dir or artifacts) / 'report.md'} ({found.seconds:.1f} s)")
    if found.diverges:
        raise typer.Exit(errors.EXIT_CHECK_FAILED)
