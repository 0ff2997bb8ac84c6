"""Architectures the training stage can build, addressed by name so a checkpoint can rebuild them."""

from __future__ import annotations

from torch import nn

#: Per-channel statistics of the CIFAR-10 training set (RGB, on pixels scaled to [0, 1]).
CIFAR10_MEAN = (0.4914, 0.4822, 0.4465)
CIFAR10_STD = (0.2470, 0.2435, 0.2616)


class SeedCNN(nn.Module):
    """The two-convolution, three-linear-layer CNN of the seed documents, unchanged so results stay comparable."""

    def __init__(self, num_classes: int = 10) -> None:
        super().__init__()
        self.features = nn.Sequential(
            nn.Conv2d(3, 6, 5),
            nn.ReLU(),
            nn.MaxPool2d(2),
            nn.Conv2d(6, 16, 5),
            nn.ReLU(),
            nn.MaxPool2d(2),
        )
        self.classifier = nn.Sequential(
            nn.Flatten(),
            nn.Linear(16 * 5 * 5, 120),
            nn.ReLU(),
            nn.Linear(120, 84),
            nn.ReLU(),
            nn.Linear(84, num_classes),
        )

    def forward(self, x):
        return self.classifier(self.features(x))


def seed_cnn(num_classes: int = 10) -> SeedCNN:
    """Factory named in checkpoints (``train.models:seed_cnn``)."""
    return SeedCNN(num_classes=num_classes)


#: ``--arch`` name -> factory path stored in the checkpoint.
ARCHITECTURES = {"seed": "train.models:seed_cnn"}
