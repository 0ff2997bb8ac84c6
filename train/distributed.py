"""Data-parallel training under ``torchrun``: DistributedDataParallel averages the gradients, nothing else here
communicates except three numbers per epoch for the log.

Every process holds the same seeded generator, so all draw the same global batch order and augmentation; each
then takes its own contiguous slice of every global batch. With the loss scaled by ``world / global_batch``, the
averaged gradient equals the single-process gradient of the whole global batch, so a 2-process run matches a
1-process run with the same global batch to float rounding (batch norm aside: each process normalizes over its
own shard, as DDP does; on CUDA the layers become SyncBatchNorm).
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Iterator
from dataclasses import dataclass

import torch

from export_kit.errors import UsageError
from train.config import DEVICES


def wants_cuda(device: str) -> bool:
    """``auto`` means the GPU when torch sees one, unless ``EXPORTKIT_TRAIN_DEVICE`` says otherwise (the test
    suite pins the CPU with it, so its calibrated figures do not depend on the machine)."""
    if device == "auto":
        device = os.environ.get("EXPORTKIT_TRAIN_DEVICE", "auto")
    if device not in DEVICES:
        raise UsageError(f"EXPORTKIT_TRAIN_DEVICE={device!r}: use {', '.join(DEVICES)}")
    if device == "cuda" and not torch.cuda.is_available():
        raise UsageError("--device cuda: torch.cuda.is_available() is False (no GPU or a CPU-only torch build)")
    return device == "cuda" or (device == "auto" and torch.cuda.is_available())


@contextlib.contextmanager
def deterministic(device: str) -> Iterator[None]:
    """Make a CUDA run repeat itself bit for bit: cuDNN's autotuner and atomic-add kernels choose and sum in an
    order that varies between runs, and two runs with the same seed ended with different weights (H100). The
    flags are process-wide, so they are restored after. On the CPU, torch's kernels already repeat themselves at
    a fixed thread count."""
    if not device.startswith("cuda"):
        yield
        return
    os.environ.setdefault("CUBLAS_WORKSPACE_CONFIG", ":4096:8")
    saved = (torch.are_deterministic_algorithms_enabled(), torch.is_deterministic_algorithms_warn_only_enabled(),
             torch.backends.cudnn.benchmark)
    torch.use_deterministic_algorithms(True, warn_only=True)
    torch.backends.cudnn.benchmark = False
    try:
        yield
    finally:
        torch.use_deterministic_algorithms(saved[0], warn_only=saved[1])
        torch.backends.cudnn.benchmark = saved[2]


@dataclass(frozen=True)
class Workers:
    rank: int = 0
    world: int = 1
    device: str = "cpu"

    @property
    def distributed(self) -> bool:
        return self.world > 1

    @property
    def is_main(self) -> bool:
        return self.rank == 0

    @classmethod
    def from_env(cls, device: str = "auto") -> Workers:
        """One process unless ``torchrun`` (or the same variables) says otherwise; then join the group:
        NCCL when each process has a GPU, gloo on CPU. ``device`` is the config's choice (auto, cpu, cuda)."""
        use_cuda = wants_cuda(device)
        world = int(os.environ.get("WORLD_SIZE", "1"))
        if world <= 1:
            return cls(device="cuda" if use_cuda else "cpu")
        import torch.distributed as dist

        cuda = use_cuda and torch.cuda.device_count() >= world
        local = int(os.environ.get("LOCAL_RANK", "0"))
        if cuda:
            torch.cuda.set_device(local)
        if not dist.is_initialized():
            dist.init_process_group("nccl" if cuda else "gloo")
        return cls(rank=dist.get_rank(), world=dist.get_world_size(), device=f"cuda:{local}" if cuda else "cpu")

    def shard(self, size: int) -> slice:
        """This process's contiguous part of a global batch of ``size``; parts differ by at most one."""
        base, extra = divmod(size, self.world)
        start = self.rank * base + min(self.rank, extra)
        return slice(start, start + base + (self.rank < extra))

    def wrap(self, model: torch.nn.Module) -> torch.nn.Module:
        if not self.distributed:
            return model
        from torch.nn.parallel import DistributedDataParallel

        if self.device.startswith("cuda"):
            model = torch.nn.SyncBatchNorm.convert_sync_batchnorm(model)
            return DistributedDataParallel(model, device_ids=[torch.device(self.device).index])
        return DistributedDataParallel(model)

    def total(self, values: list[float]) -> list[float]:
        """Sum per-process counters (loss sums, correct, seen) for the log."""
        if not self.distributed:
            return values
        import torch.distributed as dist

        summed = torch.tensor(values, dtype=torch.float64, device=self.device)
        dist.all_reduce(summed)
        return summed.tolist()

    def close(self) -> None:
        if self.distributed:
            import torch.distributed as dist

            dist.destroy_process_group()
