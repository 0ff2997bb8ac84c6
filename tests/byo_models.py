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


def channel_means() -> nn.Module:
    """Logit i is the mean of input channel i: the dominant colour wins, in the model's own channel order, so a
    BGR model fed RGB swaps red and blue."""
    linear = nn.Linear(3, 3)
    with torch.no_grad():
        linear.weight.copy_(torch.eye(3))
        linear.bias.zero_()
    return nn.Sequential(nn.AdaptiveAvgPool2d(1), nn.Flatten(), linear)


class ChannelsLast(nn.Module):
    """Takes images channels last, (batch, H, W, 3): logit i is the mean of channel i (in RGB order)."""

    def __init__(self) -> None:
        super().__init__()
        self.head = channel_means()[-1]

    def forward(self, images):
        return self.head(images.mean(dim=(1, 2)))


def channels_last() -> nn.Module:
    return ChannelsLast().eval()


class AudioCNN(nn.Module):
    """1-D convolutions over a mono waveform (batch, 1, samples): four keyword classes.

    Max pooling over time, not averaging: with random weights, an average over thousands of positions of a noise
    waveform is nearly the same for every input, so the logits vary by about 0.004 between inputs and their top
    two are about 0.004 apart, within int8's error (1e-3): top-1 agreement then measured luck, and a 7-bit weight
    change flipped one sample in four. The maximum keeps inputs apart (margins 0.04 and up), as a trained model's
    logits are."""

    def __init__(self) -> None:
        super().__init__()
        self.features = nn.Sequential(nn.Conv1d(1, 8, 9, stride=4), nn.ReLU(), nn.Conv1d(8, 16, 9, stride=4),
                                      nn.ReLU(), nn.AdaptiveMaxPool1d(1), nn.Flatten())
        self.head = nn.Linear(16, 4)

    def forward(self, audio):
        return self.head(self.features(audio))


def audio() -> nn.Module:
    torch.manual_seed(0)
    return AudioCNN()


class TextClassifier(nn.Module):
    """Token ids (batch, 32) into an embedding, one transformer encoder layer, mean pooling: three classes."""

    def __init__(self, vocab: int = 1000, width: int = 32) -> None:
        super().__init__()
        self.embed = nn.Embedding(vocab, width)
        self.encoder = nn.TransformerEncoderLayer(width, nhead=4, dim_feedforward=64, dropout=0.0,
                                                  batch_first=True)
        self.head = nn.Linear(width, 3)

    def forward(self, ids):
        return self.head(self.encoder(self.embed(ids)).mean(dim=1))


def text() -> nn.Module:
    torch.manual_seed(0)
    return TextClassifier().eval()


class MeanOfTokens(nn.Module):
    """Token ids (batch, seq) averaged after an embedding, dividing by ``float(seq)``: a Python float, so
    ``torch.jit.trace`` bakes the traced length into the graph (it warns, and the artifact is right at that length
    only), while torch.export and the ONNX exporter keep it symbolic."""

    def __init__(self) -> None:
        super().__init__()
        self.embed = nn.Embedding(100, 8)
        self.head = nn.Linear(8, 3)

    def forward(self, ids):
        return self.head(self.embed(ids).sum(1) / float(ids.shape[1]))


def mean_of_tokens() -> nn.Module:
    torch.manual_seed(0)
    return MeanOfTokens().eval()


class TwoHeads(nn.Module):
    """An image model with two outputs: class logits and a 4-number box, as detectors return."""

    def __init__(self) -> None:
        super().__init__()
        self.body = nn.Sequential(nn.Conv2d(3, 8, 3), nn.ReLU(), nn.AdaptiveAvgPool2d(1), nn.Flatten())
        self.classes = nn.Linear(8, 5)
        self.box = nn.Linear(8, 4)

    def forward(self, x):
        features = self.body(x)
        return self.box(features), self.classes(features)


def two_heads() -> nn.Module:
    torch.manual_seed(0)
    return TwoHeads()


class Fusion(nn.Module):
    """Two inputs of two dtypes: float features and int64 token ids; three classes."""

    def __init__(self) -> None:
        super().__init__()
        self.embed = nn.Embedding(50, 8)
        self.head = nn.Linear(16, 3)

    def forward(self, features, ids):
        return self.head(torch.cat([features, self.embed(ids).mean(dim=1)], dim=1))


def fusion() -> nn.Module:
    torch.manual_seed(0)
    return Fusion()


def tiny7() -> nn.Module:
    """A small CNN for seven classes whose random-weight logits are of order 0.1-1, so a bound of 1e-4 on them
    means something (a random MobileNet's are about 1e-9)."""
    torch.manual_seed(0)
    return nn.Sequential(nn.Conv2d(3, 8, 3), nn.ReLU(), nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(8, 7))


def vision7() -> nn.Module:
    """A torchvision network (MobileNetV3-small: depthwise convolutions, squeeze-excitation, hardswish) for seven
    classes."""
    import torchvision

    torch.manual_seed(0)
    return torchvision.models.mobilenet_v3_small(num_classes=7)


def resnet() -> nn.Module:
    """torchvision's ResNet-18 (residual adds, batch norm folded by the exporter), seeded, for 10 classes."""
    import torchvision

    torch.manual_seed(0)
    return torchvision.models.resnet18(num_classes=10)


class Segmenter(nn.Module):
    """Per-pixel scores for four classes at the input's resolution, (batch, 4, H, W): no class logits to rank."""

    def __init__(self) -> None:
        super().__init__()
        self.down = nn.Sequential(nn.Conv2d(3, 8, 3, padding=1), nn.ReLU(), nn.Conv2d(8, 16, 3, stride=2, padding=1),
                                  nn.ReLU())
        self.up = nn.ConvTranspose2d(16, 4, 2, stride=2)

    def forward(self, x):
        return self.up(self.down(x))


def segmenter() -> nn.Module:
    torch.manual_seed(0)
    return Segmenter().eval()


class Detector(nn.Module):
    """A detection-style head as YOLO-like models return it: 84 numbers (4 box values, 80 class scores) for each
    anchor of three scales (strides 4, 8, 16 on 32x32: 64 + 16 + 4 = 84 anchors), (batch, 84, anchors)."""

    def __init__(self) -> None:
        super().__init__()
        self.stem = nn.Sequential(nn.Conv2d(3, 16, 3, stride=4, padding=1), nn.ReLU())
        self.down = nn.ModuleList([nn.Identity(), nn.Conv2d(16, 16, 3, stride=2, padding=1),
                                   nn.Conv2d(16, 16, 3, stride=4, padding=1)])
        self.heads = nn.ModuleList([nn.Conv2d(16, 84, 1) for _ in range(3)])

    def forward(self, x):
        features = self.stem(x)
        return torch.cat([head(down(features)).flatten(2) for down, head in zip(self.down, self.heads, strict=True)],
                         dim=2)


def detector() -> nn.Module:
    torch.manual_seed(0)
    return Detector().eval()


class EmbedThenLogits(nn.Module):
    """A dict output whose first entry is a 32-wide embedding and whose second is the 5 class logits."""

    def __init__(self) -> None:
        super().__init__()
        self.body = nn.Sequential(nn.Conv2d(3, 32, 3), nn.ReLU(), nn.AdaptiveAvgPool2d(1), nn.Flatten())
        self.head = nn.Linear(32, 5)

    def forward(self, x):
        embedding = self.body(x)
        return {"embedding": embedding, "logits": self.head(embedding)}


def embed_then_logits() -> nn.Module:
    torch.manual_seed(0)
    return EmbedThenLogits().eval()
