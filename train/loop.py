"""The training loop: seeded, with a live progress bar, ending in a self-describing checkpoint."""

from __future__ import annotations

import time
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np

from export_kit.datasets import Dataset, Split
from export_kit.modelspec import load_factory, save_checkpoint
from export_kit.preprocessing import Preprocessing
from train.models import ARCHITECTURES


@dataclass
class TrainConfig:
    """Defaults chosen by measurement on CIFAR-10 (JPEG), 2 CPU cores: see the README's training table."""

    arch: str = "seed"
    epochs: int = 10
    batch_size: int = 128
    lr: float = 0.05
    momentum: float = 0.9
    weight_decay: float = 5e-4
    seed: int = 0
    flip: bool = True


def channel_stats(split: Split) -> Preprocessing:
    """Per-channel mean/std of the training pixels, rounded so the manifest stays readable."""
    pixels = split.images.reshape(-1, 3).astype(np.float64) / 255.0
    mean = tuple(round(float(v), 4) for v in pixels.mean(axis=0))
    std = tuple(round(float(v), 4) for v in pixels.std(axis=0))
    return Preprocessing(mean=mean, std=std)  # type: ignore[arg-type]


def _to_tensor(images: np.ndarray, prep: Preprocessing):
    import torch

    return torch.from_numpy(prep.apply(images))


def evaluate(model, split: Split, prep: Preprocessing, batch_size: int = 1000) -> np.ndarray:
    """Logits of ``model`` on every image of ``split``, in order."""
    import torch

    model.eval()
    out = []
    with torch.inference_mode():
        for i in range(0, len(split), batch_size):
            out.append(model(_to_tensor(split.images[i:i + batch_size], prep)).numpy())
    return np.concatenate(out)


def _epoch(model, opt, sched, split: Split, prep: Preprocessing, cfg: TrainConfig, rng, bar, task) -> dict:
    import torch
    import torch.nn.functional as F

    model.train()
    order = rng.permutation(len(split))
    seen = correct = 0
    loss_sum = 0.0
    start = time.perf_counter()
    for i in range(0, len(order), cfg.batch_size):
        idx = np.sort(order[i:i + cfg.batch_size])
        x = _to_tensor(split.images[idx], prep)
        if cfg.flip:
            flip = torch.from_numpy(rng.random(len(idx)) < 0.5)
            x[flip] = x[flip].flip(-1)
        y = torch.from_numpy(split.labels[idx])
        logits = model(x)
        loss = F.cross_entropy(logits, y)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        sched.step()
        seen += len(idx)
        loss_sum += loss.item() * len(idx)
        correct += int((logits.argmax(1) == y).sum())
        rate = seen / (time.perf_counter() - start)
        bar.update(task, advance=len(idx), description=f"loss {loss_sum / seen:.3f} acc {correct / seen:.3f} "
                   f"{rate:,.0f} img/s")
    return {"loss": loss_sum / seen, "train_accuracy": correct / seen, "images_per_s": rate}


def train(dataset: Dataset, cfg: TrainConfig, out: Path, *, progress: bool = True) -> dict:
    """Train ``cfg.arch`` on ``dataset`` and write the checkpoint to ``out``; return its metrics."""
    import torch
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn

    torch.manual_seed(cfg.seed)
    rng = np.random.default_rng(cfg.seed)
    factory = ARCHITECTURES[cfg.arch]
    model = load_factory(factory)(num_classes=len(dataset.classes))
    prep = channel_stats(dataset.train)
    opt = torch.optim.SGD(model.parameters(), lr=cfg.lr, momentum=cfg.momentum,
                          weight_decay=cfg.weight_decay, nesterov=True)
    steps = cfg.epochs * -(-len(dataset.train) // cfg.batch_size)
    sched = torch.optim.lr_scheduler.OneCycleLR(opt, max_lr=cfg.lr, total_steps=steps)
    history = []
    columns = (TextColumn("epoch {task.fields[epoch]}"), BarColumn(), MofNCompleteColumn(),
               TextColumn("{task.description}"), TimeRemainingColumn())
    started = time.perf_counter()
    with Progress(*columns, disable=not progress) as bar:
        for epoch in range(1, cfg.epochs + 1):
            task = bar.add_task("", total=len(dataset.train), epoch=f"{epoch}/{cfg.epochs}")
            history.append({"epoch": epoch, **_epoch(model, opt, sched, dataset.train, prep, cfg, rng, bar, task)})
    logits = evaluate(model, dataset.test, prep)
    metrics = {"test_accuracy": float((logits.argmax(1) == dataset.test.labels).mean()),
               "train_seconds": round(time.perf_counter() - started, 2), "history": history}
    meta = {"arch": cfg.arch, "classes": list(dataset.classes), "preprocessing": prep.to_dict(),
            "input_shape": [3, *dataset.train.images.shape[1:3]], "metrics": metrics,
            "data": dataset.provenance, "config": asdict(cfg)}
    save_checkpoint(out, model, factory=factory, kwargs={"num_classes": len(dataset.classes)}, meta=meta)
    return metrics
