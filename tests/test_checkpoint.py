"""Checkpoints are data: every broken one is a one-line CheckpointError, and a hostile pickle never runs."""

import pickle

import pytest
import torch

from export_kit.errors import CheckpointError, UsageError
from export_kit.model.spec import load_checkpoint, load_factory, save_checkpoint


def test_round_trip_keeps_weights_and_metadata(tmp_path, checkpoint):
    model, meta = load_checkpoint(checkpoint)
    assert meta["factory"] == "train.models:seed_cnn" and len(meta["classes"]) == 10
    assert {"test_accuracy", "history"} <= set(meta["metrics"]) and meta["data"]["dataset"] == "synthetic"
    copy = tmp_path / "copy.pt"
    save_checkpoint(copy, model, factory=meta["factory"], kwargs=meta["kwargs"], meta={"classes": meta["classes"]})
    again, _ = load_checkpoint(copy)
    for a, b in zip(model.state_dict().values(), again.state_dict().values(), strict=True):
        assert torch.equal(a, b)


def test_missing(tmp_path):
    with pytest.raises(CheckpointError, match="does not exist"):
        load_checkpoint(tmp_path / "missing.pt")


def test_truncated(tmp_path, checkpoint):
    bad = tmp_path / "bad.pt"
    bad.write_bytes(checkpoint.read_bytes()[:1000])
    with pytest.raises(CheckpointError, match="not a readable PyTorch checkpoint"):
        load_checkpoint(bad)


def test_not_an_exportkit_checkpoint(tmp_path):
    other = tmp_path / "plain.pt"
    torch.save({"weight": torch.zeros(3)}, other)
    with pytest.raises(CheckpointError, match="not an exportkit checkpoint"):
        load_checkpoint(other)


def test_another_architecture_names_the_mismatch(tmp_path, checkpoint):
    payload = torch.load(checkpoint, weights_only=True)
    payload["state_dict"]["classifier.1.weight"] = torch.zeros(7, 400)
    wrong = tmp_path / "wrong.pt"
    torch.save(payload, wrong)
    with pytest.raises(CheckpointError, match=r"does not fit train\.models:seed_cnn"):
        load_checkpoint(wrong)


def test_a_pickle_that_would_run_code_is_refused_and_never_executed(tmp_path):
    marker = tmp_path / "ran"
    evil = tmp_path / "evil.pt"

    class Exploit:
        def __reduce__(self):
            return (open, (str(marker), "w"))

    with open(evil, "wb") as fh:
        pickle.dump({"format": "exportkit-checkpoint", "x": Exploit()}, fh)
    torch.save({"format": "exportkit-checkpoint", "payload": Exploit()}, tmp_path / "evil2.pt")
    for path in (evil, tmp_path / "evil2.pt"):
        with pytest.raises(CheckpointError, match=r"not a readable PyTorch checkpoint|not plain tensors and data"):
            load_checkpoint(path)
    assert not marker.exists()


@pytest.mark.parametrize("spec", ["nocolon", "no_such_module_xyz:f", "train.models:missing"])
def test_bad_factory_specs_are_usage_errors(spec):
    with pytest.raises(UsageError):
        load_factory(spec)
