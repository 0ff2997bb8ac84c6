"""Model factories for the bring-your-own-model tests (imported by name, as users' factories are)."""

import torch
from torch import nn


class DataDependent(nn.Module):
    """Branches on the values of its input: tracing bakes one branch in, torch.export refuses the branch."""

    def __init__(self) -> None:
        super().__init__()
        self.conv = nn.Conv2d(3, 4, 3)
        self.fc = nn.Linear(4, 5)

    def forward(self, x):
        y = self.conv(x).mean(dim=(2, 3))
        if y.sum() > 0:
            y = y * 2
        return self.fc(y)


def data_dependent() -> nn.Module:
    torch.manual_seed(0)
    return DataDependent()


def tiny() -> nn.Module:
    torch.manual_seed(0)
    return nn.Sequential(nn.Conv2d(3, 8, 3), nn.ReLU(), nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(8, 3))


def not_a_module():
    return "nope"


def raises() -> nn.Module:
    raise RuntimeError("factory exploded")


def needs_argument(width: int) -> nn.Module:
    return nn.Linear(width, 2)


def exits() -> nn.Module:
    raise SystemExit(0)


def wrong_input() -> nn.Module:
    return nn.Linear(7, 2)  # fails on an image-shaped input


def gray() -> nn.Module:
    """A grayscale CNN: one input channel, three classes."""
    torch.manual_seed(0)
    return nn.Sequential(nn.Conv2d(1, 6, 3), nn.ReLU(), nn.AdaptiveAvgPool2d(2), nn.Flatten(), nn.Linear(24, 3))
