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


def _conv_bn(cin: int, cout: int) -> nn.Sequential:
    return nn.Sequential(nn.Conv2d(cin, cout, 3, padding=1, bias=False), nn.BatchNorm2d(cout), nn.ReLU(inplace=True))


class Residual(nn.Module):
    """``x + f(x)`` with two 3x3 conv-BN-ReLU layers: the shortcut keeps a deeper stage as easy to train."""

    def __init__(self, channels: int) -> None:
        super().__init__()
        self.body = nn.Sequential(_conv_bn(channels, channels), _conv_bn(channels, channels))

    def forward(self, x):
        return x + self.body(x)


class GlobalMaxPool(nn.Module):
    """Max over height and width, ``(N, C, H, W) -> (N, C)``. Written as ``amax`` rather than
    ``AdaptiveMaxPool2d(1)``, which ExecuTorch's core-ATen lowering refuses and onnxruntime's dynamic int8
    quantizer failed on."""

    def forward(self, x):
        return x.amax(dim=(2, 3))


class ResidualCNN(nn.Module):
    """A narrow ResNet-9-style net: conv stages with max-pooling, residual blocks after the 32- and 128-channel stages.

    Batch norm is folded into the convolutions by the ONNX and TorchScript exporters (eval mode), so exported
    graphs carry no BatchNormalization nodes. The logits are scaled down by ``logit_scale``: with label
    smoothing, small initial logits make the first epochs stable at high learning rates.
    """

    def __init__(self, num_classes: int = 10, widths: tuple[int, int, int, int] = (16, 32, 64, 128),
                 logit_scale: float = 0.125) -> None:
        super().__init__()
        a, b, c, d = widths
        self.features = nn.Sequential(
            _conv_bn(3, a),
            _conv_bn(a, b), nn.MaxPool2d(2), Residual(b),
            _conv_bn(b, c), nn.MaxPool2d(2),
            _conv_bn(c, d), nn.MaxPool2d(2), Residual(d),
            GlobalMaxPool(),
        )
        self.classifier = nn.Linear(d, num_classes)
        self.logit_scale = logit_scale

    def forward(self, x):
        return self.classifier(self.features(x)) * self.logit_scale


def residual_cnn(num_classes: int = 10) -> ResidualCNN:
    """Factory named in checkpoints (``train.models:residual_cnn``)."""
    return ResidualCNN(num_classes=num_classes)


#: ``--arch`` name -> factory path stored in the checkpoint.
ARCHITECTURES = {"seed": "train.models:seed_cnn", "resnet": "train.models:residual_cnn"}
