"""Shared fixtures: a tiny model trained once on generated data, and one export of it per test session."""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import numpy as np
import pytest

SHARED_CIFAR = Path(__file__).resolve().parents[2] / "shared" / "datasets" / "cifar10"
FAST_BENCH = {"processes": 0, "passes": 2, "slice_s": 0.01, "slice_iters": 3, "warmup_s": 0.02}


@pytest.fixture(autouse=True, scope="session")
def _isolated_cache(tmp_path_factory):
    """Keep the decode cache of the tests away from the user's ~/.cache."""
    os.environ["EXPORTKIT_CACHE"] = str(tmp_path_factory.mktemp("cache"))
    os.environ["EXPORTKIT_HOME"] = str(tmp_path_factory.mktemp("home"))  # this machine's signing key
    os.environ.pop("EXPORTKIT_DATA", None)
    os.environ["EXPORTKIT_TRAIN_DEVICE"] = "cpu"  # the figures the tests hold were measured on CPU-trained weights


@pytest.fixture(scope="session")
def synthetic():
    from export_kit.model.datasets import load_dataset

    return load_dataset("synthetic")


@pytest.fixture(scope="session")
def checkpoint(tmp_path_factory, synthetic) -> Path:
    from train.loop import TrainConfig, train

    path = tmp_path_factory.mktemp("ckpt") / "checkpoint.pt"
    train(synthetic, TrainConfig(epochs=2), path, progress=False)
    return path


def build_folder(checkpoint: Path, test, out: Path, formats=("onnx", "torchscript", "int8", "int8-static"),
                 calibration=None, **kwargs):
    from export_kit import api
    from export_kit.benchmark.sampling import SamplingConfig
    from export_kit.model.preprocessing import Preprocessing
    from export_kit.model.spec import load_checkpoint

    model, meta = load_checkpoint(checkpoint)
    example = __import__("torch").zeros(1, *meta["input_shape"])
    kwargs.setdefault("bench_batches", (1, 4))
    return api.build(model, example, formats=list(formats), out=out,
                     preprocessing=Preprocessing.from_dict(meta["preprocessing"]), classes=meta["classes"],
                     test=test, calibration=calibration, checkpoint=checkpoint,
                     model_info={"factory": meta["factory"]},
                     bench_config=SamplingConfig(**FAST_BENCH), log=lambda _: None, **kwargs)


@pytest.fixture(scope="session")
def built(tmp_path_factory, checkpoint, synthetic):
    """One full build (all formats, verify, a short bench) shared by every test that only reads it."""
    out = tmp_path_factory.mktemp("built") / "artifacts"
    report = build_folder(checkpoint, synthetic.test, out, calibration=synthetic.train.subset(30))
    return out, report


@pytest.fixture
def built_copy(built, tmp_path) -> Path:
    """A private copy of the shared build, for tests that damage it."""
    dst = tmp_path / "artifacts"
    shutil.copytree(built[0], dst)
    return dst


def write_image_folder(root: Path, classes: list[str], per_class: int, seed: int = 0, size: int = 32) -> None:
    from PIL import Image

    rng = np.random.default_rng(seed)
    for split in ("train", "test"):
        for name in classes:
            folder = root / split / name
            folder.mkdir(parents=True, exist_ok=True)
            for i in range(per_class):
                pixels = rng.integers(0, 256, (size, size, 3), dtype=np.uint8)
                Image.fromarray(pixels).save(folder / f"{i:04d}.png")


def write_photo_folder(root: Path, classes: list[str], per_class: dict[str, int], seed: int = 0) -> None:
    """JPEGs of mixed, non-square sizes (80 to 140 pixels a side), as photos arrive: a class colour plus noise."""
    from PIL import Image

    rng = np.random.default_rng(seed)
    for split, count in per_class.items():
        for label, name in enumerate(classes):
            folder = root / split / name
            folder.mkdir(parents=True, exist_ok=True)
            for i in range(count):
                height, width = (int(v) for v in rng.integers(80, 141, 2))
                tint = np.array([(label * 37) % 256, (label * 91) % 256, (label * 53) % 256], np.float32)
                pixels = np.clip(tint + rng.normal(0, 40, (height, width, 3)), 0, 255).astype(np.uint8)
                Image.fromarray(pixels).save(folder / f"{i:04d}.jpg", quality=90)


@pytest.fixture(scope="session")
def classify(tmp_path_factory) -> Path:
    """examples/cpp built as `make cpp` builds it, but under AddressSanitizer and UndefinedBehaviorSanitizer
    (SANITIZE=1): every C++ test, the hostile folders included, then fails on a memory error or undefined behaviour
    that an optimised build would pass over silently."""
    import subprocess
    import sys

    out = tmp_path_factory.mktemp("cpp")
    done = subprocess.run([str(Path(__file__).resolve().parents[1] / "examples" / "cpp" / "build.sh"), str(out)],
                          capture_output=True, text=True, timeout=600,
                          env={"PATH": "/usr/bin:/bin", "PYTHON": sys.executable, "SANITIZE": "1"})
    assert done.returncode == 0, done.stderr[-3000:]
    return out / "classify"
