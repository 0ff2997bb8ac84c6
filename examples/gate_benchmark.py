"""How often the latency gate cries wolf, and how often it catches a real slowdown.

    python examples/gate_benchmark.py ARTIFACTS [--runs 20] [--processes 7]

ARTIFACTS is a built folder with an ``onnx`` artifact. The script copies it three times: unchanged, and with
planted extra work (``tests/slowdown.py``) chosen by a quick calibration to cost about 30% and about 10% at
batch 1. It saves a baseline from the unchanged copy, then runs ``--runs`` bench runs; each run times all three
copies interleaved in the same worker processes and judges, for the ONNX row at batch 1:
- the unchanged copy against the saved baseline (every failure is a false alarm),
- each slowed copy against the saved baseline (unpaired, like ``--baseline``),
- each slowed copy against the unchanged copy of the same run (paired, like ``--against``).
"""

from __future__ import annotations

import argparse
import shutil
import sys
import tempfile
import time
from collections import Counter
from pathlib import Path

from export_kit.api import folder_spec
from export_kit.benchmark.baseline import judge
from export_kit.benchmark.run import Bench, bench_folders
from export_kit.benchmark.sampling import SamplingConfig
from export_kit.folder.access import open_folder
from export_kit.folder.signing import sign_folder

# the planted slowdown is test code: it lives beside the tests that use it, not in the package
sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))
from slowdown import add_work

ROW = ("onnx", "onnxruntime", "cpu", 1)
WIDTHS = [1024, 1536, 2048, 3072, 4096, 5120, 6144, 8192]  # planted detour widths tried by the calibration


def onnx_row(rows):
    return next(r for r in rows if (r.artifact, r.runtime, r.device, r.batch) == ROW)


def planted(src: Path, dst: Path, width: int) -> Path:
    shutil.copytree(src, dst)
    add_work(dst, width)
    sign_folder(dst)
    return dst


def time_all(folders: list[Path], cfg: SamplingConfig):
    benches = [Bench(f, folder_spec(f, None)) for f in (open_folder(p, writes=False)[0] for p in folders)]
    return [onnx_row(rows) for rows in bench_folders(benches, [ROW[3]], cfg, devices=("cpu",))]


def calibrate(src: Path, work: Path) -> dict[int, float]:
    """Each planted width's measured cost (A/B, 3 workers): new p50 / unchanged p50."""
    trials = [planted(src, work / f"trial-{w}", w) for w in WIDTHS]
    cost = {}
    for width, trial in zip(WIDTHS, trials, strict=True):
        new, old = time_all([trial, src], SamplingConfig(processes=3))
        cost[width] = new.p50_ms / old.p50_ms
    return cost


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("artifacts", type=Path)
    parser.add_argument("--runs", type=int, default=20)
    parser.add_argument("--processes", type=int, default=7)
    parser.add_argument("--max-regression", type=float, default=0.10)
    args = parser.parse_args()
    cfg = SamplingConfig(processes=args.processes)
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        base = work / "base"
        shutil.copytree(args.artifacts, base)
        cost = calibrate(base, work)
        print("calibration, planted width: cost " + ", ".join(f"{w}: {c:.3f}x" for w, c in cost.items()))
        slow = {}
        for label, target in (("+30%", 1.30), ("+10%", 1.10)):
            width = min(cost, key=lambda w: abs(cost[w] - target))
            slow[label] = planted(base, work / f"slow{label[1:-1]}", width)
            print(f"planted {label}: detour width {width}, calibration cost {cost[width]:.3f}x")
        started = time.perf_counter()
        saved = time_all([base], cfg)[0]
        print(f"baseline: onnx batch {ROW[3]} p50 {saved.p50_ms * 1000:.1f} us, {args.processes} processes, "
              f"{time.perf_counter() - started:.1f} s")
        tally: dict[str, Counter] = {}
        for run in range(args.runs):
            started = time.perf_counter()
            now, s30, s10 = time_all([base, slow["+30%"], slow["+10%"]], cfg)
            judged = {"unchanged vs saved baseline": judge("onnx", saved, now, args.max_regression, paired=False),
                      "+30% vs saved baseline": judge("onnx", saved, s30, args.max_regression, paired=False),
                      "+30% A/B in one run": judge("onnx", now, s30, args.max_regression, paired=True),
                      "+10% vs saved baseline": judge("onnx", saved, s10, args.max_regression, paired=False),
                      "+10% A/B in one run": judge("onnx", now, s10, args.max_regression, paired=True)}
            for name, g in judged.items():
                tally.setdefault(name, Counter())[f"{g.verdict}{' FAIL' if not g.passed else ''}"] += 1
            print(f"run {run + 1:2d} ({time.perf_counter() - started:.1f} s): unchanged {now.p50_ms * 1000:.1f} us, "
                  f"+30% {s30.p50_ms / now.p50_ms:.3f}x, +10% {s10.p50_ms / now.p50_ms:.3f}x; " +
                  "; ".join(f"{n.split(' ')[0]} {'A/B' if 'A/B' in n else 'base'}: {g.verdict}"
                            f"{' FAIL' if not g.passed else ''}" for n, g in judged.items()))
        print(f"\nover {args.runs} runs (max regression {args.max_regression:.0%}):")
        for name, counts in tally.items():
            print(f"  {name:28s} " + ", ".join(f"{k} {v}" for k, v in sorted(counts.items())))


if __name__ == "__main__":
    main()
