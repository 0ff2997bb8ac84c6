"""The training stage: the seed architecture, learning, seeding, and the checkpoint's self-description."""

import numpy as np
import pytest
import torch

from export_kit.model.spec import load_checkpoint
from train.loop import TrainConfig, train
from train.models import SeedCNN


def test_seed_cnn_is_the_architecture_of_the_seed_documents():
    layers = [m for m in SeedCNN().modules() if isinstance(m, (torch.nn.Conv2d, torch.nn.Linear))]
    shapes = [(m.in_channels, m.out_channels, m.kernel_size) if isinstance(m, torch.nn.Conv2d)
              else (m.in_features, m.out_features) for m in layers]
    assert shapes == [(3, 6, (5, 5)), (6, 16, (5, 5)), (400, 120), (120, 84), (84, 10)]


def test_training_learns_the_synthetic_set_and_describes_itself(checkpoint):
    _, meta = load_checkpoint(checkpoint)
    assert meta["metrics"]["test_accuracy"] > 0.5  # 10 classes: chance is 0.1
    assert meta["preprocessing"]["color"] == "RGB" and meta["input_shape"] == [3, 32, 32]
    assert meta["config"]["seed"] == 0


@pytest.mark.parametrize("device", ["cpu", pytest.param("cuda", marks=pytest.mark.gpu)])
def test_same_seed_same_weights(tmp_path, synthetic, device):
    from export_kit.model.datasets import Dataset

    if device == "cuda" and not torch.cuda.is_available():
        pytest.skip("no CUDA device")
    small = Dataset(synthetic.train.subset(20), synthetic.test.subset(5), synthetic.classes, {})
    for name in ("a.pt", "b.pt"):
        train(small, TrainConfig(epochs=1, batch_size=32, device=device), tmp_path / name, progress=False)
    assert load_checkpoint(tmp_path / "a.pt")[1]["config"]["device"] == device
    assert torch.are_deterministic_algorithms_enabled() is False  # the switch is given back after training
    a, _ = load_checkpoint(tmp_path / "a.pt")
    b, _ = load_checkpoint(tmp_path / "b.pt")
    for x, y in zip(a.state_dict().values(), b.state_dict().values(), strict=True):
        assert np.array_equal(x.numpy(), y.numpy())


def test_the_progress_bar_says_when_the_whole_run_ends():
    from train.progress import EpochBar, run_left

    assert run_left(3725.4) == "1:02:05"
    with EpochBar(1000, enabled=False) as bar:
        bar.start_epoch(2, 4)  # 2 more epochs after this one
        bar.advance(250, torch.tensor([500.0, 100.0, 250.0], dtype=torch.float64), 10.0)
        description = bar.bar.tasks[-1].description
    assert description == "loss 2.000 acc 0.400 25 img/s, run ends in 0:01:50"  # 2,750 images at 25/s = 110 s
