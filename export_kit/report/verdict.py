"""The answer a report opens with: one overall word, one line per target saying what to ship and what it costs,
one naming what failed, one for the devices this machine lacks, and a one-line-per-artifact table. Commands
print the same lines last, so a user sees the decision without opening the report."""

from __future__ import annotations

from collections import Counter

from export_kit.folder.measured import carried_note
from export_kit.results import Status


def overall(report) -> str:
    """PASS only when something was verified, nothing failed and nothing was left unrun: a report whose checks
    never ran (a build killed during verify, a folder with every row skipped, a --target never reached) is
    INCOMPLETE, and one with rows not run for want of trust (exit 5) is NOT TRUSTED, never PASS."""
    if report.failures():
        return "FAIL"
    if report.untrusted():
        return "NOT TRUSTED"
    if report.unreached():
        return "INCOMPLETE"
    if not any(r.status == Status.PASSED for r in report.verify_rows()):
        return "INCOMPLETE"
    return "PASS"


def glance(report, device: str = "cpu") -> tuple[list[str], list[list[str]]]:
    """One line per artifact on ``device``: status, size, accuracy, p50 at each batch, speed-up over eager at the
    smallest batch; the table a reader compares formats with before the details."""
    verify = {r.artifact: r for r in report.verify_rows() if r.device == device}
    timed = {(b.artifact, b.batch): b for b in report.bench_rows() if b.device == device and b.status == Status.PASSED}
    batches = sorted({batch for _, batch in timed})
    header = ["artifact", "status", "size", "accuracy", *(f"p50 ms, batch {b}" for b in batches),
              f"vs eager, batch {batches[0]}" if batches else "vs eager"]
    rows = []
    for art in report.artifacts:
        name, row = art["name"], verify.get(art["name"])
        first = timed.get((name, batches[0])) if batches else None
        rows.append([name, row.status if row else "-", _size(on_disk(art)),
                     _accuracy_cell(row),
                     *(f"{timed[(name, b)].p50_ms:.4f}" if (name, b) in timed else "-" for b in batches),
                     f"{first.speedup_vs_eager:.2f}x" if first and first.speedup_vs_eager else "-"])
    return header, rows


def _accuracy_cell(row) -> str:
    if row is None or row.accuracy is None:
        return "-"
    return f"{row.accuracy:.4f} ({carried_note(row)})" if row.accuracy_measured else f"{row.accuracy:.4f}"


def on_disk(artifact: dict) -> int | None:
    """Bytes of a report's artifact entry, its companion files included."""
    if artifact.get("bytes") is None:
        return None
    return artifact["bytes"] + sum(int(f.get("bytes", 0)) for f in artifact.get("files") or [])


def _size(n: int | None) -> str:
    if n is None:
        return "size -"
    return f"{n / 1e6:.2f} MB" if n >= 1e6 else f"{n / 1e3:.0f} kB"


def _accuracy(report, artifact: str, device: str) -> str:
    row = next((r for r in report.verify_rows() if (r.artifact, r.device) == (artifact, device)), None)
    if row is None or row.accuracy is None:
        return "accuracy not measured"
    notes = [carried_note(row)]
    if row.reference_accuracy is not None and artifact != "pytorch":
        notes.insert(0, f"{(row.accuracy - row.reference_accuracy) * 100:+.2f} pts vs PyTorch")
    notes = [n for n in notes if n]
    return f"accuracy {row.accuracy:.4f}" + (f" ({'; '.join(notes)})" if notes else "")


def speedup_text(pick: dict) -> str:
    """The speed-up over eager, with its interval whenever one was measured (a noisy eager row widens it)."""
    if not pick.get("speedup_vs_eager"):
        return "no eager row to compare"
    interval = pick.get("speedup_ci95")
    return f"{pick['speedup_vs_eager']:.2f}x eager" + (f" [{interval[0]:.2f}, {interval[1]:.2f}]" if interval else "")


def _tie_line(pick: dict) -> str:
    """A target whose fastest rows cannot be told apart: say so and how to decide, rather than pick one."""
    rows = [pick, *pick["tied_with"]]
    names = ", ".join(r["artifact"] for r in rows[:-1]) + f" and {rows[-1]['artifact']}"
    p50s = " / ".join(f"{r['p50_ms']:.4f}" for r in rows)
    rerun = (f"rerun bench with --processes {pick['processes_to_rank']} to rank them"
             if pick.get("processes_to_rank") else "rerun bench with more --processes to rank them")
    return f"{pick['target']}: {names} cannot be told apart (p50 {p50s} ms at batch {pick['batch']}): {rerun}"


def absent_devices(report) -> dict[str, str]:
    """Devices on which every verify row was skipped, each with the first reason given."""
    rows = report.verify_rows()
    devices = dict.fromkeys(r.device for r in rows)
    return {d: next(r.reason for r in rows if r.device == d) for d in devices
            if all(r.status == Status.SKIPPED for r in rows if r.device == d)}


def target_lines(report) -> list[str]:
    """One line per remote target verify reached: where it ran, how many of its rows passed, which failed."""
    lines = []
    for name, found in sorted(report.targets.items()):
        rows = [r for r in report.verify_rows() if r.target == name]
        ran = [r for r in rows if r.status != Status.SKIPPED]
        failed = [r.artifact for r in ran if r.status == Status.FAILED]
        where = f"{found.get('machine', '?')}{', emulated' if found.get('emulated') else ''}"
        lines.append(f"on {name} ({where}): {len(ran) - len(failed)} of {len(ran)} rows pass"
                     + (f", {len(rows) - len(ran)} not run there" if len(rows) > len(ran) else "")
                     + (f"; failed there: {', '.join(failed)}" if failed else ""))
    return lines


def verdict_lines(report) -> list[str]:
    """The lines after the overall word, for the report's first section and the end of every command."""
    sizes = {a["name"]: on_disk(a) for a in report.artifacts}
    lines = []
    for pick in report.recommendation:
        if pick.get("tied_with"):
            lines.append(_tie_line(pick))
            continue
        lines.append(f"{pick['target']}: ship {pick['artifact']} ({pick['runtime']}/{pick['device']}), "
                     f"p50 {pick['p50_ms']:.4f} ms at batch {pick['batch']}, {speedup_text(pick)}, "
                     f"{_accuracy(report, pick['artifact'], pick['device'])}, {_size(sizes.get(pick['artifact']))}")
    if not lines:
        lines.append("nothing to recommend: no artifact was both verified and timed"
                     if report.bench else "nothing to recommend yet: run exportkit bench for latencies")
    failed = [r for r in report.verify_rows() if r.status == Status.FAILED]
    if failed:
        lines.append("failed, do not ship: " + "; ".join(
            f"{r.artifact} on {r.runtime}/{r.device} ({', '.join(r.failed_checks()) or 'failed'})" for r in failed))
    gate = report.gate_rows()
    if gate:
        regressed = [g for g in gate if not g.passed]
        counts = Counter(g.verdict for g in gate)
        lines.append(f"latency gate: {len(gate) - len(regressed)} of {len(gate)} rows pass ("
                     + ", ".join(f"{n} {verdict}" for verdict, n in sorted(counts.items())) + ")"
                     + ("; regressed: " + "; ".join(f"{g.key} ({g.detail})" for g in regressed) if regressed else ""))
    lines += target_lines(report)
    absent = absent_devices(report)
    if absent:
        lines.append("not present here: " + "; ".join(f"{d} ({why})" for d, why in absent.items()))
    return lines
