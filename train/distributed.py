"""Data-parallel training under ``torchrun``: DistributedDataParallel averages the gradients, nothing else here
communicates except three numbers per epoch for the log.

Every process holds the same seeded generator, so all draw the same global batch order and augmentation; each
then takes its own contiguous slice of every global batch. With the loss scaled by ``world / global_batch``, the
averaged gradient equals the single-process gradient of the whole global batch, so a 2-process run matches a
1-process run with the same global batch to float rounding (batch norm aside: each process normalizes over its
own shard, as DDP does; on CUDA the layers become SyncBatchNorm).
"""

from __future__ import annotations

import os
from dataclasses import dataclass

import torch


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
    def from_env(cls) -> Workers:
        """One process unless ``torchrun`` (or the same variables) says otherwise; then join the group:
        NCCL when each process has a GPU, gloo on CPU."""
        world = int(os.environ.get("WORLD_SIZE", "1"))
        if world <= 1:
            return cls(device="cuda" if torch.cuda.is_available() else "cpu")
        import torch.distributed as dist

        cuda = torch.cuda.is_available() and torch.cuda.device_count() >= world
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
