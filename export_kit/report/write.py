"""Writing a report: derived sections, plots, then report.json, report.md and report.html, each through the one
atomic writer. Kept apart from the record so reading a report never draws or renders anything."""

from __future__ import annotations

from pathlib import Path

from export_kit.explain.core import Explanation
from export_kit.folder.layout import REPORT_HTML, REPORT_JSON, REPORT_MD
from export_kit.report.explanation import layer_plot
from export_kit.report.html import render_html
from export_kit.report.markdown import render
from export_kit.report.plots import draw
from export_kit.report.record import Report
from export_kit.safeio.atomic import write_json, write_text


def write_report(report: Report, folder: Path, *, plots: bool = True) -> None:
    """Write every file of ``report`` into ``folder``; ``plots=False`` keeps the pictures already drawn (for the
    interim write before verify, which has nothing new to draw)."""
    folder = Path(folder)
    report.derive()
    if plots:
        report.plots = draw(report.bench_rows(), report.verify_rows(), report.classes, folder)
        for entry in report.explanations:
            entry["plot"] = layer_plot(Explanation.from_dict(entry), folder)
    write_json(folder / REPORT_JSON, report.to_dict())
    markdown = render(report)
    write_text(folder / REPORT_MD, markdown)
    write_text(folder / REPORT_HTML, render_html(markdown, folder))
