"""A rich progress bar per epoch showing running loss, accuracy, images/s, the time left in the epoch and in the
whole run (silent when disabled). Where the output is not a terminal (a log file, CI), a bar draws nothing until it
ends, so each finished epoch is also one plain line."""

from __future__ import annotations

import torch


class EpochBar:
    def __init__(self, images: int, *, enabled: bool) -> None:
        from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn

        self.images = images
        self.task = None
        self.epochs_after = 0  # whole epochs still to run after the current one
        self.bar = Progress(TextColumn("epoch {task.fields[epoch]}"), BarColumn(), MofNCompleteColumn(),
                            TextColumn("{task.description}"), TimeRemainingColumn(), disable=not enabled)

    def __enter__(self) -> EpochBar:
        self.bar.__enter__()
        return self

    def __exit__(self, *exc) -> None:
        self.bar.__exit__(*exc)

    def end_epoch(self, row: dict, epochs: int) -> None:
        """One line per epoch where no bar is drawn: a log shows progress from the first epoch on."""
        if self.bar.disable or self.bar.console.is_terminal:
            return
        test = f", test accuracy {row['test_accuracy']:.4f}" if row.get("test_accuracy") is not None else ""
        print(f"epoch {row['epoch']}/{epochs}: loss {row['loss']:.4f}, train accuracy {row['train_accuracy']:.4f}"
              f"{test}, {row['seconds']:.1f} s", flush=True)

    def start_epoch(self, epoch: int, epochs: int) -> None:
        self.task = self.bar.add_task("", total=self.images, epoch=f"{epoch}/{epochs}")
        self.epochs_after = epochs - epoch

    def advance(self, images: int, totals: torch.Tensor, seconds: float) -> None:
        """``totals`` holds this process's loss sum, correct count and images seen so far."""
        loss, correct, seen = totals.tolist()
        self.bar.update(self.task, advance=images)
        done = self.bar.tasks[-1].completed
        rate = done / max(seconds, 1e-9)  # all processes' images per second
        left = (self.images - done + self.epochs_after * self.images) / max(rate, 1e-9)
        self.bar.update(self.task, description=f"loss {loss / seen:.3f} acc {correct / seen:.3f} "
                        f"{rate:,.0f} img/s, run ends in {run_left(left)}")


def run_left(seconds: float) -> str:
    """Whole-run time left as h:mm:ss, evaluation not included."""
    minutes, secs = divmod(round(seconds), 60)
    return f"{minutes // 60}:{minutes % 60:02d}:{secs:02d}"
