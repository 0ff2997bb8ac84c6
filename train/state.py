"""What a checkpoint carries besides the weights so that training can continue exactly where it stopped."""

from __future__ import annotations

from pathlib import Path

import torch

from export_kit.errors import CheckpointError, UsageError
from export_kit.model.datasets import Dataset
from export_kit.model.preprocessing import Preprocessing
from export_kit.model.spec import save_checkpoint
from train.config import TrainConfig
from train.models import ARCHITECTURES


def training_state(model: torch.nn.Module, opt: torch.optim.Optimizer, sched, generator: torch.Generator,
                   history: list[dict]) -> dict:
    """Tensors and plain values only, so the checkpoint still loads with ``weights_only=True``."""
    return {"model": model.state_dict(), "optimizer": opt.state_dict(), "scheduler": sched.state_dict(),
            "generator": generator.get_state(), "torch_rng": torch.get_rng_state(), "history": list(history)}


def save_progress(out: Path, model: torch.nn.Module, cfg: TrainConfig, dataset: Dataset, prep: Preprocessing,
                  training: dict, metrics: dict | None = None) -> None:
    """Write the checkpoint atomically: usable by ``build`` at any epoch, complete once ``metrics`` is given."""
    history = training["history"]
    meta = {"arch": cfg.arch, "classes": list(dataset.classes), "preprocessing": prep.to_dict(),
            "input_shape": [3, *dataset.train.images.shape[1:3]], "data": dataset.provenance,
            "config": cfg.to_dict(), "epochs_done": len(history), "complete": metrics is not None,
            "metrics": metrics or {"history": history}, "training": training}
    save_checkpoint(out, model, factory=ARCHITECTURES[cfg.arch],
                    kwargs={"num_classes": len(dataset.classes)}, meta=meta)


def check_resumable(payload: dict, dataset: Dataset, path: Path) -> None:
    """Refuse, in one line, a checkpoint that cannot continue on ``dataset``."""
    if "training" not in payload or "config" not in payload:
        raise CheckpointError(f"{path} has no training state to resume from (it was not written by "
                              "`exportkit train`)")
    if payload.get("complete"):
        raise UsageError(f"{path} already finished all {payload['epochs_done']} epochs; nothing to resume")
    if list(payload.get("classes", [])) != list(dataset.classes) or payload.get("data", {}).get(
            "train_images") != dataset.provenance.get("train_images"):
        raise UsageError(f"{path} was trained on other data ({payload.get('data', {}).get('dataset', '?')}); "
                         "resume with the same --dataset/--data-dir")
