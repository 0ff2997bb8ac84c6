"""A rich progress bar per epoch showing running loss, accuracy and images/s (silent when disabled)."""

from __future__ import annotations

import torch


class EpochBar:
    def __init__(self, images: int, *, enabled: bool) -> None:
        from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn

        self.images = images
        self.task = None
        self.bar = Progress(TextColumn("epoch {task.fields[epoch]}"), BarColumn(), MofNCompleteColumn(),
                            TextColumn("{task.description}"), TimeRemainingColumn(), disable=not enabled)

    def __enter__(self) -> EpochBar:
        self.bar.__enter__()
        return self

    def __exit__(self, *exc) -> None:
        self.bar.__exit__(*exc)

    def start_epoch(self, epoch: int, epochs: int) -> None:
        self.task = self.bar.add_task("", total=self.images, epoch=f"{epoch}/{epochs}")

    def advance(self, images: int, totals: torch.Tensor, seconds: float) -> None:
        """``totals`` holds this process's loss sum, correct count and images seen so far."""
        loss, correct, seen = totals.tolist()
        self.bar.update(self.task, advance=images, description=f"loss {loss / seen:.3f} acc {correct / seen:.3f} "
                        f"{seen / max(seconds, 1e-9):,.0f} img/s")
