"""An explanation as people read it: a Markdown section (report.md), a terminal table, and a plot of error by
layer depth (matplotlib)."""

from __future__ import annotations

import math
import re
from pathlib import Path

from export_kit.explain.core import Explanation
from export_kit.explain.layers import LayerDiff, costliest
from export_kit.safeio.escape import code, markdown_with_code
from export_kit.safeio.escape import markdown as md

#: Rows shown in report.md around the first diverging layer; report.json holds them all.
SHOWN = 30


def snr_text(row: LayerDiff) -> str:
    if row.snr_db is None:
        return "exact"
    return f"{row.snr_db:.1f}" if math.isfinite(row.snr_db) else str(row.snr_db)


def headline(e: Explanation) -> str:
    """One sentence: where the divergence starts, or that no layer passed the floor, or why it could not run."""
    if e.reason:
        return f"{e.artifact}: not localizable: {e.reason}"
    against = f"against {e.reference}, {e.samples} golden samples, floor {e.min_snr_db:g} dB SNR"
    if e.first is None:
        most = costliest(e.rows(), 1)
        added = f"; most error added by {code(most[0].tensor)} ({most[0].op}, {most[0].added:+.3g} relative RMS)" \
            if most else ""
        return f"{e.artifact}: every one of {len(e.layers)} layers within the {e.precision} floor ({against}){added}"
    first = LayerDiff.from_dict(e.first)
    where = f"module {code(first.module)}" if first.module else "no module recorded"
    where += f", weights {', '.join(first.weights)}" if first.weights else ""
    why = f"{first.nonfinite} non-finite values" if first.nonfinite else f"SNR {snr_text(first)} dB"
    return (f"{e.artifact}: first diverging layer {code(first.tensor)} ({first.op}, {where}): {why}, max abs err "
            f"{first.max_abs:.3g} ({against})")


def table_rows(e: Explanation, limit: int | None = None) -> list[list[str]]:
    rows = e.rows()
    start = 0
    if limit is not None and len(rows) > limit:
        at = next((i for i, r in enumerate(rows) if r.over), 0)
        start = max(0, min(at - limit // 3, len(rows) - limit))
        rows = rows[start:start + limit]
    return [[str(start + i + 1), r.tensor, r.op, r.module or "-", snr_text(r), f"{r.cosine:.6f}", f"{r.max_abs:.3g}",
             f"{r.added:+.3g}", str(r.nonfinite), "**over**" if r.over else ""] for i, r in enumerate(rows)]


HEADER = ["#", "tensor", "op", "module", "SNR dB", "cosine", "max abs", "error added", "NaN/inf", "floor"]


def markdown(explanations: list[Explanation]) -> list[str]:
    """The report section: per explanation its headline, a table of layers and its plot."""
    parts = ["## Where the failures start (exportkit explain)", "",
             "Each matched tensor of the artifact against its reference, in graph order. SNR is "
             "10 log10(signal / error power); a layer is over when it falls below its precision's floor or holds "
             "new NaN/inf. 'error added' is the layer's relative RMS error minus the largest it was fed.", ""]
    for e in explanations:
        parts += [f"### {md(e.artifact)}", "", markdown_with_code(headline(e)), ""]
        if e.layers:
            body = table_rows(e, SHOWN)
            parts += ["| " + " | ".join(HEADER) + " |", "|" + "---|" * len(HEADER),
                      *["| " + " | ".join(md(c) for c in row) + " |" for row in body], ""]
            if len(e.layers) > SHOWN:
                parts += [f"{len(e.layers) - SHOWN} more layers in report.json.", ""]
            if e.tapped_drift:
                size = "where they are NaN" if math.isnan(e.tapped_drift) else f"by up to {e.tapped_drift:.3g}"
                parts += [f"Exposing every tensor changed the artifact's own outputs {size}: onnxruntime fuses "
                          "differently when intermediate tensors are outputs, so the table shows the unfused "
                          "arithmetic.", ""]
        if e.plot:
            parts += [f"![{e.plot.removesuffix('.png')}]({e.plot})", ""]
    return parts


def plot_name(artifact: str) -> str:
    return "explain-" + re.sub(r"[^A-Za-z0-9_.-]", "_", artifact) + ".png"


def layer_plot(e: Explanation, folder: Path) -> str:
    """SNR by layer depth with the floor drawn and the first diverging layer marked; returns the file name."""
    from export_kit.report.plots import pyplot, save_png

    rows = e.rows()
    if not rows:
        return ""
    plt = pyplot()
    cap = 150.0  # exact layers (no error at all) are drawn at the top of the axis
    values = [cap if r.snr_db is None else max(min(r.snr_db, cap), -50.0) for r in rows]
    fig, ax = plt.subplots(figsize=(max(6.0, 0.18 * len(rows)), 3.6))
    ax.plot(range(1, len(rows) + 1), values, marker="o", markersize=3, linewidth=1)
    ax.axhline(e.min_snr_db, color="red", linestyle="--", linewidth=1, label=f"{e.precision} floor")
    first = next((i for i, r in enumerate(rows) if r.over), None)
    if first is not None:
        ax.axvline(first + 1, color="orange", linewidth=1, label=f"first over: {rows[first].tensor}")
    ax.set_xlabel("layer (graph order)")
    ax.set_ylabel("SNR dB vs reference")
    ax.set_title(f"{e.artifact} against {e.reference}", fontsize=9)
    ax.legend(fontsize=7)
    fig.tight_layout()
    name = plot_name(e.artifact)
    save_png(fig, Path(folder) / name)
    plt.close(fig)
    return name
