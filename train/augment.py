"""Training-time augmentation on whole uint8 batches: random crop with zero padding, and horizontal flip.

Both are one gather over a padded batch, so augmenting a batch costs about as much as copying it; decoding and
transforming images one at a time through PIL would cost more than the seed CNN's forward pass. The random draws
are made for a whole global batch and can be sliced, so each process of a distributed run augments only its own
shard yet every image gets exactly the crop it would get in a single-process run.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F


@dataclass(frozen=True)
class CropFlip:
    """Per-image offsets (``dy``, ``dx`` in ``[0, 2 * pad]``) and mirror flags for one batch."""

    dy: torch.Tensor
    dx: torch.Tensor
    mirror: torch.Tensor
    pad: int

    @classmethod
    def draw(cls, n: int, generator: torch.Generator, *, pad: int = 4, flip: bool = True) -> CropFlip:
        """Draws from ``generator`` only, so a run (and a resumed run) replays exactly."""
        dy = torch.randint(0, 2 * pad + 1, (n,), generator=generator)
        dx = torch.randint(0, 2 * pad + 1, (n,), generator=generator)
        mirror = torch.rand(n, generator=generator) < 0.5 if flip else torch.zeros(n, dtype=torch.bool)
        return cls(dy, dx, mirror, pad)

    def __getitem__(self, part: slice) -> CropFlip:
        return CropFlip(self.dy[part], self.dx[part], self.mirror[part], self.pad)

    def apply(self, images: torch.Tensor) -> torch.Tensor:
        """Crop and mirror ``(N, C, H, W)`` images; the output has the input's shape and dtype."""
        n, c, h, w = images.shape
        pad = self.pad
        padded = F.pad(images, (pad, pad, pad, pad))
        rows = (self.dy[:, None] + torch.arange(h))[:, None, :, None].expand(n, c, h, w + 2 * pad)
        ahead = torch.arange(w).expand(n, w)
        cols = torch.where(self.mirror[:, None], ahead.flip(-1), ahead) + self.dx[:, None]
        return padded.gather(2, rows).gather(3, cols[:, None, None, :].expand(n, c, h, w))
