"""The record of a training run: one JSON line per epoch next to the checkpoint, and TensorBoard events when the
optional ``tensorboard`` package is installed (``pip install 'exportkit[tensorboard]'``).

The checkpoint's history is the authority: on resume the JSON-lines file is rewritten from it, so epochs logged
by a run killed before its checkpoint landed are not counted twice.
"""

from __future__ import annotations

import json
from pathlib import Path

from export_kit.safeio.atomic import write_text


def log_path(checkpoint: Path) -> Path:
    """``artifacts/checkpoint.pt`` logs to ``artifacts/checkpoint.log.jsonl``."""
    return checkpoint.with_name(f"{checkpoint.stem}.log.jsonl")


def tensorboard_dir(checkpoint: Path) -> Path:
    return checkpoint.parent / "tensorboard" / checkpoint.stem


class RunLog:
    """Appends per-epoch records; a no-op outside the main process of a distributed run."""

    def __init__(self, checkpoint: Path, history: list[dict], *, enabled: bool = True) -> None:
        self.path = log_path(checkpoint)
        self.enabled = enabled
        self.writer = None
        if not enabled:
            return
        write_text(self.path, "".join(json.dumps(row) + "\n" for row in history))
        try:
            from torch.utils.tensorboard import SummaryWriter
        except ImportError:
            return
        self.writer = SummaryWriter(str(tensorboard_dir(checkpoint)), purge_step=len(history) + 1)

    def write(self, row: dict) -> None:
        if not self.enabled:
            return
        with open(self.path, "a", encoding="utf-8") as fh:
            fh.write(json.dumps(row) + "\n")
        if self.writer is not None:
            for key, value in row.items():
                if key != "epoch" and isinstance(value, int | float):
                    self.writer.add_scalar(key, value, row["epoch"])
            self.writer.flush()

    def close(self) -> None:
        if self.writer is not None:
            self.writer.close()
