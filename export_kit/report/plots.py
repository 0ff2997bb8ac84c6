"""Pictures of the latency table: p50 bars with p90/p99 whiskers, and latency against batch size (matplotlib)."""

from __future__ import annotations

from pathlib import Path

from export_kit.folder.layout import BATCH_PNG, CLASSES_PNG, LATENCY_PNG
from export_kit.results import BenchResult, Status, VerifyResult
from export_kit.safeio.atomic import atomic_path


def save_png(fig, path: Path) -> None:
    """Through the one atomic writer: never onto a symlink, never a half-written PNG."""
    with atomic_path(path) as tmp:
        fig.savefig(tmp, dpi=110, format="png")


def pyplot():
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


#: A panel's x axis ends at this multiple of its slowest p50: one row's stray p99 (a noisy 100 ms among 1 ms rows)
#: would otherwise squash every bar into the first pixels; a whisker cut there is labelled with its value.
CLIP_AT_P50 = 2.5


def latency_figure(rows: list[BenchResult]):
    """One panel per batch size, or None when nothing passed."""
    ok = [r for r in rows if r.status == Status.PASSED]
    batches = sorted({r.batch for r in ok})
    if not batches:
        return None
    plt = pyplot()
    fig, axes = plt.subplots(1, len(batches), figsize=(5.5 * len(batches), 0.45 * max(4, len(ok) / len(batches)) + 2),
                             squeeze=False)
    for ax, batch in zip(axes[0], batches, strict=True):
        _latency_panel(ax, sorted((r for r in ok if r.batch == batch), key=lambda r: r.p50_ms), batch)
    axes[0][0].legend(loc="lower right", fontsize=8)
    fig.suptitle("latency per call, ms: bar p50, tick p90, whisker p99", fontsize=10)
    fig.tight_layout()
    return fig


def _latency_panel(ax, mine: list[BenchResult], batch: int) -> None:
    limit = CLIP_AT_P50 * max(r.p50_ms for r in mine)
    labels = [f"{r.artifact} ({r.runtime}/{r.device}){' NOISY' if r.noisy else ''}" for r in mine]
    p50 = [r.p50_ms for r in mine]
    ax.barh(labels, p50, color="#4c78a8")
    ax.errorbar(p50, labels, xerr=[[0] * len(mine), [min(r.p99_ms, limit) - r.p50_ms for r in mine]], fmt="none",
                ecolor="black", capsize=3, label="p99")
    ax.scatter([min(r.p90_ms, limit) for r in mine], labels, marker="|", color="#e45756", s=120, zorder=3,
               label="p90")
    for label, r in zip(labels, mine, strict=True):
        if r.p99_ms > limit:
            ax.annotate(f"p99 {r.p99_ms:.3g} ms", (limit, label), xytext=(-4, 6), textcoords="offset points",
                        ha="right", fontsize=7)
    ax.set_xlim(0, limit * 1.02)
    ax.set_title(f"batch {batch}")
    ax.set_xlabel("ms")
    ax.tick_params(axis="y", labelsize=8)
    ax.invert_yaxis()


def latency_plot(rows: list[BenchResult], path: Path) -> bool:
    """Write :func:`latency_figure`; returns False when there is nothing to draw."""
    fig = latency_figure(rows)
    if fig is None:
        return False
    save_png(fig, path)
    pyplot().close(fig)
    return True


def batch_plot(rows: list[BenchResult], path: Path) -> bool:
    """p50 per image against batch size, one line per artifact x target; needs two or more batch sizes."""
    ok = [r for r in rows if r.status == Status.PASSED]
    if len({r.batch for r in ok}) < 2:
        return False
    plt = pyplot()
    fig, ax = plt.subplots(figsize=(7, 4.5))
    for key in sorted({(r.artifact, r.runtime, r.device) for r in ok}):
        line = sorted((r for r in ok if (r.artifact, r.runtime, r.device) == key), key=lambda r: r.batch)
        ax.plot([r.batch for r in line], [r.p50_ms / r.batch for r in line], marker="o",
                label=f"{key[0]} ({key[1]}/{key[2]})")
    ax.set_xscale("log", base=2)
    ax.set_yscale("log")
    ax.set_xlabel("batch size")
    ax.set_ylabel("p50 latency per image, ms")
    ax.grid(True, which="both", alpha=0.3)
    ax.legend(fontsize=8)
    fig.tight_layout()
    save_png(fig, path)
    plt.close(fig)
    return True


def class_plot(rows: list[VerifyResult], classes: list[str], path: Path) -> bool:
    """The reference's confusion matrix beside per-class F1 of every verified row: where an export hurts."""
    scored = [r for r in rows if r.class_metrics]
    reference = next((r for r in scored if r.runtime == "eager"), scored[0] if scored else None)
    if reference is None:
        return False
    import numpy as np

    plt = pyplot()
    names = classes or [str(i) for i in range(len(reference.class_metrics["f1"]))]
    matrix = np.array(reference.class_metrics["confusion_matrix"])
    f1 = np.array([[np.nan if v is None else v for v in r.class_metrics["f1"]] for r in scored])
    fig, (left, right) = plt.subplots(1, 2, figsize=(6 + 0.6 * len(names), 0.5 * len(names) + 2.5))
    left.imshow(matrix, cmap="Blues")
    for (i, j), v in np.ndenumerate(matrix):
        left.text(j, i, str(v), ha="center", va="center", fontsize=7,
                  color="white" if v > matrix.max() / 2 else "black")
    left.set(title=f"confusion matrix: {reference.artifact} ({reference.runtime})", xlabel="predicted",
             ylabel="true", xticks=range(len(names)), yticks=range(len(names)))
    left.set_xticklabels(names, rotation=60, fontsize=7)
    left.set_yticklabels(names, fontsize=7)
    right.imshow(f1, cmap="RdYlGn", vmin=max(0.0, float(np.nanmin(f1)) - 0.05), vmax=1.0, aspect="auto")
    for (i, j), v in np.ndenumerate(f1):
        right.text(j, i, "-" if np.isnan(v) else f"{v:.2f}", ha="center", va="center", fontsize=7)
    right.set(title="per-class F1", xticks=range(len(names)), yticks=range(len(scored)))
    right.set_xticklabels(names, rotation=60, fontsize=7)
    right.set_yticklabels([f"{r.artifact} ({r.runtime}/{r.device})" for r in scored], fontsize=7)
    fig.tight_layout()
    save_png(fig, path)
    plt.close(fig)
    return True


def draw(rows: list[BenchResult], verified: list[VerifyResult], classes: list[str], folder: Path) -> list[str]:
    """Write the plots that apply and return their file names (relative to the folder)."""
    made = [CLASSES_PNG] if class_plot(verified, classes, Path(folder) / CLASSES_PNG) else []
    if latency_plot(rows, Path(folder) / LATENCY_PNG):
        made.append(LATENCY_PNG)
    if batch_plot(rows, Path(folder) / BATCH_PNG):
        made.append(BATCH_PNG)
    return made
