"""The training loop: seeded, resumable, data-parallel under torchrun, ending in a self-describing checkpoint.

After every epoch the checkpoint is rewritten atomically with the weights and the state needed to continue
(optimizer, schedule, data-order generator, global RNG, history), so a killed run loses at most one epoch and
``--resume`` replays the remaining epochs exactly as an uninterrupted run would have.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F

from export_kit.model.datasets import Dataset
from export_kit.model.preprocessing import Preprocessing
from export_kit.model.spec import load_factory, read_checkpoint
from export_kit.verification.metrics import classification_summary
from train.augment import CropFlip
from train.config import TrainConfig
from train.data import TrainBatches, channel_stats, evaluate
from train.distributed import Workers, deterministic
from train.models import ARCHITECTURES
from train.progress import EpochBar
from train.runlog import RunLog
from train.state import check_resumable, save_progress, training_state


@dataclass
class Run:
    """Everything that changes while training; ``state`` in the checkpoint is made from it."""

    cfg: TrainConfig
    model: torch.nn.Module
    net: torch.nn.Module
    opt: torch.optim.Optimizer
    sched: torch.optim.lr_scheduler.LRScheduler
    generator: torch.Generator
    prep: Preprocessing
    history: list[dict] = field(default_factory=list)


def _start(dataset: Dataset, cfg: TrainConfig, workers: Workers) -> Run:
    torch.manual_seed(cfg.seed)
    model = load_factory(ARCHITECTURES[cfg.arch])(num_classes=len(dataset.classes))
    model = model.to(device=workers.device, dtype=cfg.torch_dtype)
    if cfg.channels_last:
        model = model.to(memory_format=torch.channels_last)
    opt = torch.optim.SGD(model.parameters(), lr=cfg.lr, momentum=cfg.momentum, weight_decay=cfg.weight_decay,
                          nesterov=cfg.momentum > 0)
    steps = cfg.epochs * cfg.steps_per_epoch(len(dataset.train), workers.world)
    if cfg.schedule == "onecycle":
        sched = torch.optim.lr_scheduler.OneCycleLR(opt, max_lr=cfg.lr, total_steps=steps, pct_start=cfg.warmup)
    else:
        sched = torch.optim.lr_scheduler.CosineAnnealingLR(opt, T_max=steps)
    generator = torch.Generator().manual_seed(cfg.seed)
    return Run(cfg, model, workers.wrap(model), opt, sched, generator, channel_stats(dataset.train))


def _restore(run: Run, training: dict) -> None:
    run.model.load_state_dict(training["model"])
    run.opt.load_state_dict(training["optimizer"])
    run.sched.load_state_dict(training["scheduler"])
    run.generator.set_state(training["generator"])
    torch.set_rng_state(training["torch_rng"])
    run.history = list(training["history"])


def _epoch(run: Run, data: TrainBatches, workers: Workers, bar: EpochBar) -> dict:
    cfg = run.cfg
    run.net.train()
    order = torch.randperm(len(data), generator=run.generator)
    totals = torch.zeros(3, dtype=torch.float64)  # loss sum, correct, seen (this process)
    start = time.perf_counter()
    lr = run.sched.get_last_lr()[0]
    for i in range(0, len(order), cfg.batch_size):
        batch = order[i:i + cfg.batch_size]
        augment = CropFlip.draw(len(batch), run.generator, pad=cfg.crop, flip=cfg.flip) if cfg.augments else None
        if len(batch) < workers.world:
            continue  # a tail too small to give every process an image
        mine = workers.shard(len(batch))
        x, y = data.batch(batch[mine], augment[mine] if augment else None)
        x, y = x.to(workers.device, non_blocking=True), y.to(workers.device, non_blocking=True)
        logits = run.net(x)
        loss = F.cross_entropy(logits, y, reduction="sum", label_smoothing=cfg.label_smoothing)
        run.opt.zero_grad(set_to_none=True)
        (loss * (workers.world / len(batch))).backward()
        run.opt.step()
        lr = run.sched.get_last_lr()[0]
        run.sched.step()
        totals += torch.tensor([loss.item(), (logits.argmax(1) == y).sum().item(), len(y)], dtype=torch.float64)
        bar.advance(len(batch), totals, time.perf_counter() - start)
    loss_sum, correct, seen = workers.total(totals.tolist())
    seconds = time.perf_counter() - start
    return {"loss": loss_sum / seen, "train_accuracy": correct / seen, "lr": lr,
            "images_per_s": seen / seconds, "seconds": round(seconds, 3)}


def final_metrics(logits: np.ndarray, dataset: Dataset, history: list[dict]) -> dict:
    """Test accuracy, per-class scores and confusion matrix, and the training time summed over resumed runs."""
    predictions = logits.argmax(1)
    return {"test_accuracy": float((predictions == dataset.test.labels).mean()),
            "train_seconds": round(sum(row["seconds"] for row in history), 2),
            **classification_summary(dataset.test.labels, predictions, len(dataset.classes)), "history": history}


def _evaluate(run: Run, dataset: Dataset) -> tuple[np.ndarray, float]:
    """Test-set logits and the images/s of computing them."""
    started = time.perf_counter()
    logits = evaluate(run.model, dataset.test, run.prep, channels_last=run.cfg.channels_last)
    return logits, round(len(dataset.test) / (time.perf_counter() - started), 1)


def _checkpoint(run: Run, dataset: Dataset, out: Path, metrics: dict | None = None) -> None:
    training = training_state(run.model, run.opt, run.sched, run.generator, run.history)
    save_progress(out, run.model, run.cfg, dataset, run.prep, training, metrics)


def train(dataset: Dataset, cfg: TrainConfig, out: Path, *, progress: bool = True, resume: Path | None = None,
          stop_after: int | None = None) -> dict:
    """Train ``cfg.arch`` on ``dataset``, checkpointing to ``out`` after every epoch; return the metrics.

    ``resume`` continues a checkpoint written by this function (its own config wins); ``stop_after`` ends the run
    after that epoch with a resumable checkpoint, for splitting a long run across time-limited jobs.
    """
    out = Path(out)
    training = None
    if resume is not None:
        payload = read_checkpoint(Path(resume))
        check_resumable(payload, dataset, resume)
        cfg, training = TrainConfig.from_dict(payload["config"]), payload["training"]
    cfg.check()
    workers = Workers.from_env(cfg.device)
    try:
        with deterministic(workers.device):
            run = _start(dataset, cfg, workers)
            if training is not None:
                _restore(run, training)
            return _loop(run, dataset, out, workers, progress=progress, stop_after=stop_after)
    finally:
        workers.close()


def _loop(run: Run, dataset: Dataset, out: Path, workers: Workers, *, progress: bool,
          stop_after: int | None) -> dict:
    cfg = run.cfg
    last = cfg.epochs if stop_after is None else min(cfg.epochs, stop_after)
    data = TrainBatches(dataset.train, run.prep, channels_last=cfg.channels_last, dtype=cfg.torch_dtype)
    log = RunLog(out, run.history, enabled=workers.is_main)
    evaluated = None  # the last epoch's test-set evaluation, reused for the final metrics
    try:
        with EpochBar(len(data), enabled=progress and workers.is_main) as bar:
            for epoch in range(len(run.history) + 1, last + 1):
                bar.start_epoch(epoch, cfg.epochs)
                row = {"epoch": epoch, **_epoch(run, data, workers, bar)}
                if cfg.eval_each_epoch and workers.is_main:
                    evaluated = _evaluate(run, dataset)
                    row["test_accuracy"] = float((evaluated[0].argmax(1) == dataset.test.labels).mean())
                run.history.append(row)
                bar.end_epoch(row, cfg.epochs)
                if workers.is_main:
                    _checkpoint(run, dataset, out)
                    log.write(row)
    finally:
        log.close()
    if not workers.is_main:
        return {}
    if len(run.history) < cfg.epochs:
        return {"epochs_done": len(run.history), "history": run.history}
    logits, images_per_s = evaluated or _evaluate(run, dataset)
    metrics = {**final_metrics(logits, dataset, run.history), "eval_images_per_s": images_per_s}
    _checkpoint(run, dataset, out, metrics)
    return metrics

