"""Training settings, with defaults per architecture chosen by measurement (README, "Training")."""

from __future__ import annotations

from dataclasses import asdict, dataclass, fields

from export_kit.errors import UsageError
from train.models import ARCHITECTURES

SCHEDULES = ("onecycle", "cosine")
#: float64 is for reproducibility checks: its rounding is 2**29 times finer, so runs that differ only in the order
#: of additions (process count, thread count) agree to ~1e-12 instead of ~1e-5, at 2-4x the training time.
DTYPES = ("float32", "float64")
#: ``auto`` trains on the GPU when torch sees one, unless ``EXPORTKIT_TRAIN_DEVICE`` names a device.
DEVICES = ("auto", "cpu", "cuda")

#: Settings that differ from the :class:`TrainConfig` defaults for an architecture.
ARCH_DEFAULTS: dict[str, dict] = {
    "seed": {},
    "resnet": {"epochs": 18, "batch_size": 256, "lr": 0.2, "label_smoothing": 0.2, "crop": 4},
}


@dataclass
class TrainConfig:
    arch: str = "seed"
    epochs: int = 10
    batch_size: int = 128
    lr: float = 0.05
    momentum: float = 0.9
    weight_decay: float = 5e-4
    label_smoothing: float = 0.0
    schedule: str = "onecycle"
    warmup: float = 0.25
    crop: int = 0
    flip: bool = True
    channels_last: bool = True
    eval_each_epoch: bool = True
    seed: int = 0
    dtype: str = "float32"
    device: str = "auto"

    @classmethod
    def for_arch(cls, arch: str = "seed", **overrides) -> TrainConfig:
        """The measured defaults of ``arch``, then ``overrides`` (None values are ignored)."""
        if arch not in ARCHITECTURES:
            raise UsageError(f"unknown --arch {arch!r}; choose one of: {', '.join(ARCHITECTURES)}")
        given = {k: v for k, v in overrides.items() if v is not None}
        return cls(arch=arch, **{**ARCH_DEFAULTS[arch], **given})

    @classmethod
    def from_dict(cls, data: dict) -> TrainConfig:
        names = {f.name for f in fields(cls)}
        return cls(**{k: v for k, v in data.items() if k in names})

    def to_dict(self) -> dict:
        return asdict(self)

    @property
    def torch_dtype(self):
        import torch

        return getattr(torch, self.dtype)

    @property
    def augments(self) -> bool:
        return self.crop > 0 or self.flip

    def steps_per_epoch(self, images: int, world: int = 1) -> int:
        """Optimizer steps per epoch; a last batch smaller than the process count is skipped."""
        full, tail = divmod(images, self.batch_size)
        return full + (tail >= world if tail else 0)

    def check(self) -> None:
        problems = []
        if self.arch not in ARCHITECTURES:
            problems.append(f"arch must be one of {', '.join(ARCHITECTURES)}")
        if self.schedule not in SCHEDULES:
            problems.append(f"schedule must be one of {', '.join(SCHEDULES)}")
        if self.dtype not in DTYPES:
            problems.append(f"dtype must be one of {', '.join(DTYPES)}")
        if self.device not in DEVICES:
            problems.append(f"device must be one of {', '.join(DEVICES)}")
        if self.epochs < 1 or self.batch_size < 1:
            problems.append("epochs and batch size must be at least 1")
        if not 0.0 <= self.label_smoothing < 1.0:
            problems.append("label smoothing must be in [0, 1)")
        if not 0.0 < self.warmup < 1.0:
            problems.append("warmup must be a fraction in (0, 1)")
        if self.crop < 0 or self.lr <= 0 or self.weight_decay < 0 or not 0 <= self.momentum < 1:
            problems.append("crop, weight decay and momentum must be >= 0 (momentum < 1), lr > 0")
        if problems:
            raise UsageError("bad training settings: " + "; ".join(problems))
