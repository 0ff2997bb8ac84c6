"""Peak memory of `exportkit verify` against the size of the test set: 2,000 and 20,000 generated 224x224 JPEGs.

    python examples/verify_memory.py [WORK_DIR]

For each size it writes an image folder (10 classes), builds a small 224x224 CNN's folder from it (ONNX only,
no bench: the build decodes the images into the memory-mapped cache), then runs `exportkit verify --data-dir` in
a fresh process, twice: with the cache built (warm) and after deleting it (cold: the decode runs inside verify).
It prints each run's peak resident memory (ru_maxrss of the child) and wall time. The test split is read from
the memory-mapped cache one batch at a time, so the peak should not grow with the number of images.
"""

from __future__ import annotations

import os
import resource
import shutil
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import torch
from torch import nn

HERE = Path(__file__).resolve().parent
SIZES = (2_000, 20_000)


def cnn224() -> nn.Module:
    """A small CNN for 3x224x224 inputs and 10 classes (imported by name by `exportkit build --model`)."""
    torch.manual_seed(0)
    return nn.Sequential(nn.Conv2d(3, 8, 7, stride=4), nn.ReLU(), nn.Conv2d(8, 16, 3, stride=2), nn.ReLU(),
                         nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(16, 10))


def write_images(root: Path, test_images: int) -> None:
    from PIL import Image

    rng = np.random.default_rng(0)
    for split, count in (("train", 20), ("test", test_images)):
        for i in range(count):
            label = i % 10
            folder = root / split / f"class{label}"
            folder.mkdir(parents=True, exist_ok=True)
            base = np.full((224, 224, 3), 20 * label, np.int16)
            pixels = np.clip(base + rng.integers(0, 60, (224, 224, 3)), 0, 255).astype(np.uint8)
            Image.fromarray(pixels).save(folder / f"{i:05d}.jpg", quality=85)


def peak_of(args: list[str], env: dict) -> tuple[float, float]:
    """Run ``exportkit ARGS`` in a child of a fresh watcher process; return its peak RSS in MB and seconds."""
    watcher = ("import resource, subprocess, sys, time; t = time.perf_counter(); "
               "code = subprocess.run(sys.argv[1:]).returncode; "
               "print(resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss, time.perf_counter() - t, code)")
    done = subprocess.run([sys.executable, "-c", watcher, sys.executable, "-m", "export_kit", *args], env=env,
                          cwd=HERE, capture_output=True, text=True, check=True)
    kb, seconds, code = done.stdout.split()[-3:]
    if code not in ("0", "1"):
        raise SystemExit(f"exportkit {' '.join(args)} exited {code}: {done.stderr[-2000:]}")
    return int(kb) / 1024, float(seconds)


def main() -> None:
    work = Path(sys.argv[1] if len(sys.argv) > 1 else "/tmp/exportkit-verify-memory")
    shutil.rmtree(work, ignore_errors=True)
    for size in SIZES:
        data, out, cache = work / f"data{size}", work / f"artifacts{size}", work / f"cache{size}"
        start = time.perf_counter()
        write_images(data, size)
        print(f"{size} images written in {time.perf_counter() - start:.0f} s", flush=True)
        env = {**os.environ, "EXPORTKIT_CACHE": str(cache)}
        env.pop("EXPORTKIT_DATA", None)
        build = ["build", "--model", "verify_memory:cnn224", "--input-shape", "3x224x224", "--data-dir", str(data),
                 "--formats", "onnx", "--out", str(out), "--no-bench", "--golden", "40"]
        peak, seconds = peak_of(build, env)
        print(f"{size} images: build (decode included) peak {peak:.0f} MB, {seconds:.0f} s", flush=True)
        verify = ["verify", "--artifacts", str(out), "--data-dir", str(data), "--device", "cpu"]
        peak, seconds = peak_of(verify, env)
        print(f"{size} images: verify, cache warm: peak {peak:.0f} MB, {seconds:.0f} s", flush=True)
        shutil.rmtree(cache)
        peak, seconds = peak_of(verify, env)
        print(f"{size} images: verify, cache cold (decodes): peak {peak:.0f} MB, {seconds:.0f} s", flush=True)
    print(f"max RSS of this script itself: {resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024:.0f} MB")


if __name__ == "__main__":
    main()
