"""Time the whole pipeline on the real data, twice: cold decode cache, then warm. Prints a table for the README.

    python examples/pipeline_benchmark.py --data-dir ../shared/datasets/cifar10

Each run is ``exportkit build`` (train with default settings, export, verify, bench) in a subprocess, so the
figures are wall time as a user sees it. Latency ratios come from the second run's report.json, where eager
PyTorch and every artifact were timed side by side on the same machine.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path


def run_build(data_dir: Path, out: Path, cache: Path) -> tuple[float, dict]:
    """Wall seconds of one ``exportkit build`` and its per-stage timings from report.json."""
    env = {**os.environ, "EXPORTKIT_CACHE": str(cache), "EXPORTKIT_DATA": str(data_dir)}
    start = time.perf_counter()
    subprocess.run([sys.executable, "-m", "export_kit", "build", "--out", str(out)], env=env, check=True,
                   stdout=subprocess.DEVNULL)
    wall = time.perf_counter() - start
    return wall, json.loads((out / "report.json").read_text())["timings"]


def bench_twice(out: Path) -> list[str]:
    """Two back-to-back `exportkit bench` runs: does every p50 agree within 10%, or is the row flagged noisy?"""
    runs = []
    for _ in range(2):
        subprocess.run([sys.executable, "-m", "export_kit", "bench", "--artifacts", str(out), "--batch", "1,32",
                        "--device", "cpu"], check=False, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        report = json.loads((out / "report.json").read_text())
        runs.append({(b["artifact"], b["batch"]): b for b in report["bench"] if b["status"] == "passed"})
    lines = []
    for key, first in runs[0].items():
        second = runs[1][key]
        diff = abs(second["p50_ms"] / first["p50_ms"] - 1)
        flagged = first["noisy"] or second["noisy"]
        verdict = "within 10%" if diff <= 0.10 else ("flagged noisy" if flagged else "DISAGREE, not flagged")
        lines.append(f"bench twice {key[0]:17s} batch {key[1]:3d}: p50 {first['p50_ms']:.4f} / {second['p50_ms']:.4f}"
                     f" ms, {diff:.1%} apart: {verdict}")
    return lines


def training_lines(out: Path) -> list[str]:
    """Training and evaluation speed from the run log and the checkpoint the build wrote."""
    from export_kit.model.spec import read_checkpoint

    history = [json.loads(line) for line in (out / "checkpoint.log.jsonl").read_text().splitlines()]
    metrics = read_checkpoint(out / "checkpoint.pt")["metrics"]
    rates = sorted(row["images_per_s"] for row in history)
    return [f"training: {len(history)} epochs in {metrics['train_seconds']:.1f} s, median {rates[len(rates) // 2]:,.0f}"
            f" images/s (range {rates[0]:,.0f}-{rates[-1]:,.0f}); evaluation {metrics['eval_images_per_s']:,.0f}"
            f" images/s; test accuracy {metrics['test_accuracy']:.4f}, macro F1 {metrics['macro_f1']:.4f}"]


def summarize(out: Path) -> list[str]:
    report = json.loads((out / "report.json").read_text())
    lines = [f"reference test accuracy: {report['model']['test_accuracy']:.4f} (CIFAR-10 JPEG, 10,000 images)"]
    verify = {(r["artifact"], r["device"]): r for r in report["verify"]}
    for (name, device), row in verify.items():
        if device == "cpu":
            lines.append(f"verify {name:17s} {row['status']:7s} accuracy {row['accuracy']:.4f} "
                         f"top-1 agreement {row['top1_agreement']:.4f} max abs err {row['max_abs_err']:.2e} "
                         f"McNemar p {row['mcnemar']['p_value']:.2g}")
    ok = [b for b in report["bench"] if b["status"] == "passed"]
    for b in ok:
        lines.append(f"bench {b['artifact']:17s} {b['runtime']:11s} batch {b['batch']:3d} p50 {b['p50_ms']:.4f} ms "
                     f"p99 {b['p99_ms']:.4f} ms  {b['speedup_vs_eager']:.2f}x vs eager")
    fp32 = [b for b in ok if b["batch"] == 1 and b["artifact"] in ("onnx", "torchscript")]
    best = max(fp32, key=lambda b: b["speedup_vs_eager"])
    lines.append(f"fastest fp32 artifact at batch 1: {best['artifact']} ({best['runtime']}), "
                 f"{best['speedup_vs_eager']:.2f}x faster than eager PyTorch")
    lines += [f"recommended for {r['target']}: {r['artifact']} ({r['speedup_vs_eager']:.2f}x vs eager)"
              for r in report["recommendation"]]
    lines += [f"note: {n}" for n in report["notes"]]
    env = report["environment"]
    lines.append(f"machine: {env['cpu']}, {env['cpu_cores']} cores; torch {env['torch']}, "
                 f"onnxruntime {env['onnxruntime']}")
    return lines


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data-dir", type=Path, required=True)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as work:
        cache, out = Path(work) / "cache", Path(work) / "artifacts"
        cold = run_build(args.data_dir.resolve(), out, cache)
        warm = run_build(args.data_dir.resolve(), out, cache)
        print(f"date: {time.strftime('%Y-%m-%d')}")
        for label, (wall, stages) in (("cold", cold), ("warm", warm)):
            detail = ", ".join(f"{k} {v:.1f}" for k, v in stages.items())
            print(f"exportkit build, {label} decode cache: {wall:.1f} s wall ({detail})")
        print("\n".join(training_lines(out)))
        print("\n".join(summarize(out)))
        print("\n".join(bench_twice(out)))


if __name__ == "__main__":
    main()
