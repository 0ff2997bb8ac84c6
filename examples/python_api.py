"""Export, verify and benchmark your own model from Python, in memory, with no training stage.

    python examples/python_api.py [OUT_DIR]

Builds a small CNN with random weights, exports it to ONNX, TorchScript and int8 in OUT_DIR (default
./api-artifacts), verifies each against the model on seeded random images, times them (the quick sampling: three
worker processes; `exportkit bench` on the folder gives the full intervals), and prints the failures (none
expected) and where the report is.
"""

from __future__ import annotations

import sys
from pathlib import Path

import torch
from torch import nn

import export_kit
from export_kit.benchmark.sampling import QUICK
from export_kit.model.preprocessing import Preprocessing


def make_model() -> nn.Module:
    torch.manual_seed(0)
    return nn.Sequential(
        nn.Conv2d(3, 16, 3, padding=1), nn.BatchNorm2d(16), nn.ReLU(), nn.MaxPool2d(2),
        nn.Conv2d(16, 32, 3, padding=1), nn.BatchNorm2d(32), nn.ReLU(), nn.AdaptiveAvgPool2d(1),
        nn.Flatten(), nn.Linear(32, 4),
    ).eval()


def main() -> None:
    out = Path(sys.argv[1] if len(sys.argv) > 1 else "api-artifacts")
    report = export_kit.build(
        make_model(), torch.zeros(1, 3, 64, 64),
        formats="onnx,torchscript,int8", out=out,
        preprocessing=Preprocessing(mean=(0.5, 0.5, 0.5), std=(0.25, 0.25, 0.25)),
        classes=["circle", "square", "star", "triangle"],
        golden_count=32, bench_batches=(1, 8), bench_config=QUICK,
    )
    for line in report.failures():
        print("FAILED", line)
    print(f"{'PASS' if report.passed else 'FAIL'}: see {out / 'report.md'}")
    sys.exit(0 if report.passed else 1)


if __name__ == "__main__":
    main()
