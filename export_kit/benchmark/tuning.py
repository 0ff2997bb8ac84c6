"""Runtime settings chosen by measurement (``bench --tune``), never by rule of thumb.

Every candidate setting of a row (the runtime's defaults first, then thread counts, spinning, IO binding; each
runtime lists its own) is timed in the same worker processes, interleaved. The fastest replaces the defaults only
when it is faster beyond noise: the paired bootstrap interval of its latency over the defaults' lies wholly below
1, at a confidence raised for the number of candidates (Bonferroni), so trying many candidates does not make a
lucky one win. So a tuned row is never slower than the defaults beyond noise. The winners go into the manifest's
``runtime_settings`` (artifact -> "runtime/device/batchN" -> settings), which later bench runs and the C++ and
JavaScript consumers apply; the manifest is then signed again with the local key, which is why tuning refuses a
folder that a trusted key has not signed (exit 5): it would turn an untrusted folder into a trusted one.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from pathlib import Path

import numpy as np

from export_kit.benchmark.sampling import Sample
from export_kit.folder.manifest import Manifest, load_manifest
from export_kit.results import BenchResult, Status
from export_kit.verification.stats import ratio_ci


def settings_key(row: BenchResult) -> str:
    return f"{row.runtime}/{row.device}/batch{row.batch}"


def recorded_options(manifest: Manifest, row: BenchResult) -> dict | None:
    """The settings a tuning run recorded for this row, or None (the built-in thread heuristic)."""
    return manifest.runtime_settings.get(row.artifact, {}).get(settings_key(row))


def choose(row: BenchResult, candidates: list[tuple[dict | None, list[Sample]]],
           summarize: Callable[[BenchResult, list[Sample]], BenchResult]) -> None:
    """Fill ``row`` from the chosen candidate and list every candidate's p50 and ratio to the defaults."""
    runnable = [(options, samples) for options, samples in candidates
                if all(s.status == Status.PASSED for s in samples)]
    default = next(((o, s) for o, s in runnable if o == {}), None)
    if default is None:  # the defaults themselves could not run: report why, choose nothing
        summarize(row, candidates[0][1])
        return
    default_p50s = [s.p50 for s in default[1]]
    confidence = 1 - 0.05 / max(len(runnable) - 1, 1)  # Bonferroni: k candidates, one 5% chance of a false win
    row.tuning = []
    for options, samples in runnable:
        point, low, high = ratio_ci([s.p50 for s in samples], default_p50s, paired=True, confidence=confidence)
        row.tuning.append({"options": options, "p50_ms": float(np.median([s.p50 for s in samples])),
                           "vs_default": [point, low, high]})
    best = min(row.tuning, key=lambda t: t["p50_ms"])
    chosen = best if best["vs_default"][2] < 1.0 else row.tuning[0]
    row.tuned = chosen["options"]
    summarize(row, next(s for o, s in runnable if o == chosen["options"]))


def record(folder: Path, rows: list[BenchResult], trust_keys: Sequence[Path] = ()) -> Manifest:
    """Write the chosen settings into the folder's manifest and sign it again with the local key, provided the
    manifest about to be rewritten is still the one a trusted key signed."""
    from export_kit.folder.signing import require_trusted_signature, sign_folder

    require_trusted_signature(folder, trust_keys, "bench --tune")
    manifest = load_manifest(folder)
    for row in rows:
        if row.tuned is not None:
            manifest.runtime_settings.setdefault(row.artifact, {})[settings_key(row)] = row.tuned
    manifest.write(folder)
    sign_folder(folder)
    return manifest


def gain(row: BenchResult) -> str:
    """What the chosen settings gained over the defaults, in words for the report."""
    if row.tuned is None or not row.tuning:
        return "-"
    if row.tuned == {}:
        return "defaults kept (no candidate faster beyond noise)"
    point, low, high = next(t["vs_default"] for t in row.tuning if t["options"] == row.tuned)
    return f"{describe(row.tuned)}: {point:.3f}x the defaults' latency [{low:.3f}, {high:.3f}]"


def describe(options: dict) -> str:
    return ", ".join(f"{k}={v}" for k, v in options.items()) or "defaults"
