"""How long `exportkit explain` takes, per artifact, on the seed CNN and on a 224x224 torchvision network.

    python examples/explain_benchmark.py SEED_FOLDER [WORK_DIR]

SEED_FOLDER is a built folder of the seed CNN (`make build` writes one to artifacts/). The script also builds
torchvision's ResNet-18 (seeded weights, 10 classes, 3x224x224, 4 generated training and test images per class
for the static int8 calibration) with onnx, fp16 and int8-static into WORK_DIR, then times `exportkit explain` in
a fresh process for every ONNX artifact of both folders (16 golden samples each: the default) and prints one row
per artifact: seconds, matched layers, and the first diverging layer if any.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

EXE = str(Path(sys.executable).with_name("exportkit"))
ONNX_FORMATS = ("onnx", "fp16", "int8-onnx", "int8-static")
HERE = Path(__file__).resolve().parent
#: The factories below import by name (`explain_benchmark:resnet18_10`) in the exportkit processes.
ENV = {**os.environ, "PYTHONPATH": os.pathsep.join(filter(None, [str(HERE), os.environ.get("PYTHONPATH")]))}
FACTORY = "explain_benchmark:resnet18_10"


def resnet18_10():
    """torchvision's ResNet-18 for 10 classes, seeded (built by name by `exportkit build --model`)."""
    import torch
    import torchvision

    torch.manual_seed(0)
    return torchvision.models.resnet18(num_classes=10)


def write_images(root: Path, per_class: int) -> None:
    from PIL import Image

    rng = np.random.default_rng(0)
    for split in ("train", "test"):
        for label in range(10):
            folder = root / split / f"c{label}"
            folder.mkdir(parents=True, exist_ok=True)
            for i in range(per_class):
                pixels = rng.integers(0, 256, (224, 224, 3), dtype=np.uint8)
                Image.fromarray(pixels).save(folder / f"{i:03d}.jpg", quality=90)


def build_resnet(work: Path) -> Path:
    data, out = work / "images", work / "resnet18"
    write_images(data, 4)
    subprocess.run([EXE, "build", "--model", FACTORY, "--input-shape", "3x224x224", "--data-dir", str(data),
                    "--formats", "onnx,fp16,int8-static", "--out", str(out), "--no-bench", "--golden", "16"],
                   check=True, stdout=subprocess.DEVNULL, env=ENV)
    return out


def time_explain(folder: Path, artifact: str, factory: str | None) -> tuple[float, dict]:
    args = [EXE, "explain", "--artifacts", str(folder), "--artifact", artifact]
    args += ["--allow-factory", factory] if factory else []
    start = time.perf_counter()
    subprocess.run(args, check=False, stdout=subprocess.DEVNULL, env=ENV)
    seconds = time.perf_counter() - start
    report = json.loads((folder / "report.json").read_text())
    return seconds, next(e for e in report["explanations"] if e["artifact"] == artifact)


def main() -> None:
    seed = Path(sys.argv[1])
    work = Path(sys.argv[2]) if len(sys.argv) > 2 else Path(tempfile.mkdtemp(prefix="explain-bench-"))
    folders = [("seed CNN", seed, None), ("resnet18 224x224", build_resnet(work), FACTORY)]
    print("| model | artifact | reference | explain s (fresh process) | of which explaining | layers | first over |")
    print("|---|---|---|---|---|---|---|")
    for label, folder, factory in folders:
        names = [a["name"] for a in json.loads((folder / "manifest.json").read_text())["artifacts"]]
        for artifact in (n for n in ONNX_FORMATS if n in names):
            seconds, found = time_explain(folder, artifact, factory)
            first = found["first"]["tensor"] if found.get("first") else "-"
            print(f"| {label} | {artifact} | {found['reference']} | {seconds:.1f} | {found['seconds']:.1f} | "
                  f"{len(found['layers'])} | {first} |")


if __name__ == "__main__":
    main()
