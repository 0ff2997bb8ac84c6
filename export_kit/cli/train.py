"""``exportkit train``: kept apart from :mod:`export_kit.cli.app` so that file stays a list of the commands that export,
verify and time a model; training is the stage before them."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from export_kit import errors
from export_kit.cli.support import DataDir, Dataset, log

Opt = typer.Option


def train(
    out: Annotated[Path | None, Opt(help="checkpoint to write, after every epoch [default: artifacts/checkpoint.pt, "
                                         "or the --resume file]")] = None,
    arch: Annotated[str | None, Opt(help="seed (the seed documents' CNN) or resnet (residual, batch norm) "
                                         "[default: seed]")] = None,
    epochs: Annotated[int | None, Opt(min=1, help="[default: per arch, README 'Training']")] = None,
    batch_size: Annotated[int | None, Opt(min=1, help="global batch, split across torchrun processes")] = None,
    lr: Annotated[float | None, Opt(min=0.0, help="peak learning rate")] = None,
    momentum: Annotated[float | None, Opt(min=0.0, max=0.999)] = None,
    weight_decay: Annotated[float | None, Opt(min=0.0)] = None,
    label_smoothing: Annotated[float | None, Opt(min=0.0, max=0.99)] = None,
    schedule: Annotated[str | None, Opt(help="onecycle or cosine")] = None,
    crop: Annotated[int | None, Opt(min=0, help="random-crop padding in pixels, 0 = off")] = None,
    flip: Annotated[bool | None, Opt("--flip/--no-flip", help="random horizontal flips")] = None,
    channels_last: Annotated[bool | None, Opt("--channels-last/--no-channels-last")] = None,
    eval_each_epoch: Annotated[bool | None, Opt("--eval-each-epoch/--no-eval-each-epoch",
                                                help="log test accuracy after every epoch")] = None,
    seed: Annotated[int | None, Opt()] = None,
    dtype: Annotated[str | None, Opt(help="float32, or float64 for reproducibility checks (slower) "
                                          "[default: float32]")] = None,
    device: Annotated[str | None, Opt(help="auto (the GPU when torch sees one, else the CPU), cpu or cuda; "
                                           "CUDA training is made deterministic [default: auto]")] = None,
    resume: Annotated[Path | None, Opt(help="continue this checkpoint with its own settings")] = None,
    stop_after: Annotated[int | None, Opt(min=1, help="stop after this epoch, leaving a resumable checkpoint")] = None,
    data_dir: DataDir = None,
    dataset: Dataset = "cifar10",
) -> None:
    """Train a CNN on CIFAR-10 and write a self-describing, resumable checkpoint; under torchrun, with DDP."""
    from export_kit.pipeline import load_data, train, training_warnings

    settings = {"epochs": epochs, "batch_size": batch_size, "lr": lr, "momentum": momentum,
                "weight_decay": weight_decay, "label_smoothing": label_smoothing, "schedule": schedule, "crop": crop,
                "flip": flip, "channels_last": channels_last, "eval_each_epoch": eval_each_epoch, "seed": seed,
                "dtype": dtype, "device": device}
    given = sorted(k for k, v in {**settings, "arch": arch}.items() if v is not None)
    if resume is not None and given:
        raise errors.UsageError(f"--resume continues the run with its own settings; drop --"
                                f"{', --'.join(g.replace('_', '-') for g in given)}")
    out = out or resume or Path("artifacts/checkpoint.pt")
    metrics = train(load_data(dataset, data_dir), out, arch=arch or "seed", settings=settings, resume=resume,
                    stop_after=stop_after)
    for warning in training_warnings(metrics.get("history", [])):
        log(f"warning: {warning}")
    if "test_accuracy" in metrics:
        log(f"test accuracy {metrics['test_accuracy']:.4f} after {metrics['train_seconds']:.0f}s of training; "
             f"wrote {out}")
    elif metrics:
        log(f"stopped after epoch {metrics['epochs_done']}; continue with: exportkit train --resume {out}")
