"""The training stage beyond a bare loop: augmentation, resume, the run log, metrics, settings, torchrun."""

import json
import re
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
from typer.testing import CliRunner

from export_kit.cli.app import app
from export_kit.model.datasets import Dataset
from export_kit.model.spec import read_checkpoint
from export_kit.verification.metrics import class_metrics, classification_summary
from train import loop
from train.augment import CropFlip
from train.config import TrainConfig
from train.runlog import log_path

runner = CliRunner()


@pytest.fixture(scope="module")
def small(synthetic) -> Dataset:
    return Dataset(synthetic.train.subset(24), synthetic.test.subset(10), synthetic.classes, synthetic.provenance)


def _weights(path: Path) -> dict:
    return read_checkpoint(path)["state_dict"]


def _assert_same_weights(a: Path, b: Path, atol: float = 0.0) -> None:
    wa, wb = _weights(a), _weights(b)
    assert wa.keys() == wb.keys()
    for key in wa:
        assert torch.allclose(wa[key].float(), wb[key].float(), atol=atol, rtol=0), key


def test_crop_flip_is_a_window_of_the_padded_image_maybe_mirrored():
    images = torch.randint(1, 256, (64, 3, 32, 32), dtype=torch.uint8)
    params = CropFlip.draw(64, torch.Generator().manual_seed(1), pad=4)
    out = params.apply(images)
    assert out.shape == images.shape and out.dtype == torch.uint8
    padded = torch.nn.functional.pad(images, (4, 4, 4, 4))
    for i in range(64):  # reference: slice the 32x32 window out of the zero-padded image, then mirror it
        dy, dx = int(params.dy[i]), int(params.dx[i])
        window = padded[i, :, dy:dy + 32, dx:dx + 32]
        assert torch.equal(out[i], window.flip(-1) if params.mirror[i] else window), i
    assert 0 < int(params.mirror.sum()) < 64


def test_a_slice_of_the_draws_augments_exactly_like_the_whole_batch():
    images = torch.randint(0, 256, (10, 3, 32, 32), dtype=torch.uint8)
    params = CropFlip.draw(10, torch.Generator().manual_seed(2))
    assert torch.equal(params[3:7].apply(images[3:7]), params.apply(images)[3:7])


def test_no_crop_no_flip_is_the_identity():
    images = torch.randint(0, 256, (5, 3, 8, 8), dtype=torch.uint8)
    assert torch.equal(CropFlip.draw(5, torch.Generator(), pad=0, flip=False).apply(images), images)


def test_two_epochs_then_resume_equals_four_straight(tmp_path, small):
    cfg = dict(epochs=4, batch_size=16, label_smoothing=0.1)
    loop.train(small, TrainConfig(**cfg), tmp_path / "straight.pt", progress=False)
    stopped = loop.train(small, TrainConfig(**cfg), tmp_path / "split.pt", progress=False, stop_after=2)
    assert stopped["epochs_done"] == 2 and not read_checkpoint(tmp_path / "split.pt")["complete"]
    done = loop.train(small, TrainConfig(), tmp_path / "split.pt", progress=False, resume=tmp_path / "split.pt")
    _assert_same_weights(tmp_path / "straight.pt", tmp_path / "split.pt", atol=1e-6)
    straight = read_checkpoint(tmp_path / "straight.pt")["metrics"]
    assert done["test_accuracy"] == straight["test_accuracy"]
    assert [r["loss"] for r in done["history"]] == pytest.approx([r["loss"] for r in straight["history"]], rel=1e-6)
    lines = [json.loads(x) for x in log_path(tmp_path / "split.pt").read_text().splitlines()]
    assert [r["epoch"] for r in lines] == [1, 2, 3, 4]


def test_a_run_killed_mid_epoch_loses_only_that_epoch(tmp_path, small, monkeypatch):
    real_epoch, calls = loop._epoch, []

    def dies_in_epoch_two(*args):
        calls.append(1)
        if len(calls) == 2:
            raise KeyboardInterrupt
        return real_epoch(*args)

    monkeypatch.setattr(loop, "_epoch", dies_in_epoch_two)
    with pytest.raises(KeyboardInterrupt):
        loop.train(small, TrainConfig(epochs=3, batch_size=16), tmp_path / "c.pt", progress=False)
    assert read_checkpoint(tmp_path / "c.pt")["epochs_done"] == 1
    assert not [p.name for p in tmp_path.iterdir() if "partial" in p.name]
    monkeypatch.setattr(loop, "_epoch", real_epoch)
    loop.train(small, TrainConfig(), tmp_path / "c.pt", progress=False, resume=tmp_path / "c.pt")
    loop.train(small, TrainConfig(epochs=3, batch_size=16), tmp_path / "ref.pt", progress=False)
    _assert_same_weights(tmp_path / "ref.pt", tmp_path / "c.pt", atol=1e-6)


def test_resume_refuses_a_finished_run_and_other_data(tmp_path, small, synthetic):
    from export_kit.errors import UsageError

    loop.train(small, TrainConfig(epochs=1, batch_size=16), tmp_path / "c.pt", progress=False)
    with pytest.raises(UsageError, match="already finished"):
        loop.train(small, TrainConfig(), tmp_path / "c.pt", resume=tmp_path / "c.pt", progress=False)
    loop.train(small, TrainConfig(epochs=2, batch_size=16), tmp_path / "d.pt", progress=False, stop_after=1)
    other = Dataset(synthetic.train.subset(30), small.test, small.classes, {"train_images": 300})
    with pytest.raises(UsageError, match="other data"):
        loop.train(other, TrainConfig(), tmp_path / "d.pt", resume=tmp_path / "d.pt", progress=False)


def test_run_log_records_every_epoch_with_or_without_tensorboard(tmp_path, small, monkeypatch):
    monkeypatch.setitem(sys.modules, "torch.utils.tensorboard", None)  # as if tensorboard were not installed
    loop.train(small, TrainConfig(epochs=2, batch_size=16), tmp_path / "c.pt", progress=False)
    rows = [json.loads(x) for x in log_path(tmp_path / "c.pt").read_text().splitlines()]
    assert [r["epoch"] for r in rows] == [1, 2]
    for row in rows:
        assert {"loss", "train_accuracy", "test_accuracy", "lr", "images_per_s", "seconds"} <= row.keys()
        assert row["loss"] > 0 and row["images_per_s"] > 0 and 0 <= row["lr"] <= 0.05
    assert not (tmp_path / "tensorboard").exists()


def test_tensorboard_events_when_it_is_installed(tmp_path, small):
    pytest.importorskip("tensorboard")
    loop.train(small, TrainConfig(epochs=1, batch_size=16), tmp_path / "c.pt", progress=False)
    assert list((tmp_path / "tensorboard" / "c").glob("events.out.tfevents.*"))


def test_class_metrics_on_a_hand_counted_example():
    labels = np.array([0, 0, 0, 1, 1, 2])
    predictions = np.array([0, 0, 1, 1, 1, 1])
    summary = classification_summary(labels, predictions, 3)
    assert summary["confusion_matrix"] == [[2, 1, 0], [0, 2, 0], [0, 1, 0]]
    assert summary["precision"] == [1.0, 0.5, None]  # class 2 never predicted
    assert summary["recall"] == pytest.approx([2 / 3, 1.0, 0.0])
    assert summary["f1"] == pytest.approx([0.8, 2 / 3, 0.0])  # never predicted: 0, and it counts in the mean
    assert summary["macro_f1"] == pytest.approx((0.8 + 2 / 3 + 0.0) / 3)
    assert class_metrics(np.zeros((2, 2), dtype=int))["recall"] == [None, None]
    assert class_metrics(np.array([[3, 0], [0, 0]]))["f1"] == [1.0, None]  # class 1 neither present nor predicted


def test_finished_checkpoint_carries_confusion_matrix_and_per_class_scores(checkpoint, synthetic):
    metrics = read_checkpoint(checkpoint)["metrics"]
    matrix = np.array(metrics["confusion_matrix"])
    assert matrix.sum() == len(synthetic.test) and np.trace(matrix) / matrix.sum() == pytest.approx(
        metrics["test_accuracy"])
    f1 = 2 * np.diag(matrix) / (matrix.sum(axis=0) + matrix.sum(axis=1))  # every class is in the test split
    assert len(synthetic.classes) == len(metrics["f1"]) and metrics["f1"] == pytest.approx(f1.tolist())
    assert metrics["macro_f1"] == pytest.approx(f1.mean())


@pytest.mark.parametrize("args, fragment", [
    (["--arch", "vgg"], "unknown --arch"),
    (["--schedule", "step"], "schedule must be one of"),
    (["--epochs", "0"], "--epochs"),
    (["--dtype", "float16"], "dtype must be one of"),
])
def test_bad_training_settings_exit_2_in_one_line(tmp_path, args, fragment):
    result = runner.invoke(app, ["train", "--dataset", "synthetic", "--out", str(tmp_path / "c.pt"), *args])
    assert result.exit_code == 2 and fragment in result.output
    assert not (tmp_path / "c.pt").exists()


def test_settings_reach_the_checkpoint_and_resume_refuses_new_ones(tmp_path):
    out = tmp_path / "c.pt"
    args = ["train", "--dataset", "synthetic", "--out", str(out), "--epochs", "2", "--stop-after", "1",
            "--label-smoothing", "0.1", "--schedule", "cosine", "--crop", "2", "--no-flip", "--no-eval-each-epoch"]
    result = runner.invoke(app, args)
    assert result.exit_code == 0, result.output
    assert "--resume" in result.output
    config = read_checkpoint(out)["config"]
    assert (config["label_smoothing"], config["schedule"], config["crop"], config["flip"]) == (0.1, "cosine", 2,
                                                                                                False)
    result = runner.invoke(app, ["train", "--dataset", "synthetic", "--resume", str(out), "--lr", "1"])
    assert result.exit_code == 2 and "drop --lr" in result.output


@pytest.mark.slow
def test_torchrun_two_processes_match_one_process_with_the_same_global_batch(tmp_path, synthetic):
    """DDP over gloo: 2 CPU processes of 64 images per step (the last step 16 each) vs one process of 128.

    The two runs differ only in the order of additions (per-process partial sums, thread partitioning), which
    depends on the machine's load and thread settings. In float32 that drifted past 1e-5 on a busy machine; so
    both run in float64, whose unit roundoff (1.1e-16) is 2**29 times finer: the worst float32 drift seen,
    scaled, is ~2e-14, and 1e-10 leaves a margin of 5,000. The nearest wrong answer (one process at batch 64,
    what a DDP that did not average would approach) lies 0.3 away, so the bound still tells right from wrong.
    """
    cfg = dict(epochs=1, eval_each_epoch=False, dtype="float64")
    loop.train(synthetic, TrainConfig(**cfg), tmp_path / "one.pt", progress=False)
    proc = subprocess.run([sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc-per-node", "2",
                           "-m", "train", "--dataset", "synthetic", "--out", str(tmp_path / "two.pt"),
                           "--epochs", "1", "--batch-size", "128", "--no-eval-each-epoch", "--dtype", "float64"],
                          capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert read_checkpoint(tmp_path / "two.pt")["config"]["batch_size"] == 128
    assert all(w.dtype == torch.float64 for w in _weights(tmp_path / "two.pt").values() if w.is_floating_point())
    _assert_same_weights(tmp_path / "one.pt", tmp_path / "two.pt", atol=1e-10)
    loop.train(synthetic, TrainConfig(**cfg, batch_size=64), tmp_path / "half.pt", progress=False)
    with pytest.raises(AssertionError):
        _assert_same_weights(tmp_path / "one.pt", tmp_path / "half.pt", atol=1e-2)


def test_report_has_per_class_scores_for_the_reference_and_every_artifact(built, synthetic):
    folder, report = built
    scored = {r["artifact"]: r["class_metrics"] for r in report.verify
              if r["status"] == "passed" and r["device"] == "cpu"}
    assert {"pytorch", "onnx", "torchscript", "int8-onnx", "int8-static"} <= scored.keys()
    for name, metrics in scored.items():
        matrix = np.array(metrics["confusion_matrix"])
        assert matrix.shape == (10, 10) and matrix.sum() == len(synthetic.test), name
        assert matrix.sum(axis=1).tolist() == np.bincount(synthetic.test.labels, minlength=10).tolist()
    assert "classes.png" in report.plots and (folder / "classes.png").stat().st_size > 10_000
    assert "Per-class F1" in (folder / "report.md").read_text()


@pytest.mark.slow
def test_residual_cnn_with_batch_norm_passes_verify_in_every_format(tmp_path, small, synthetic):
    import onnx
    from conftest import build_folder

    loop.train(small, TrainConfig.for_arch("resnet", epochs=2, batch_size=32), tmp_path / "r.pt", progress=False)
    formats = ("onnx", "torchscript", "int8", "int8-static", "fp16", "ort", "executorch")
    report = build_folder(tmp_path / "r.pt", synthetic.test, tmp_path / "a", formats=formats,
                          calibration=small.train, bench_batches=())
    assert report.passed, report.failures()
    assert {r["artifact"] for r in report.verify if r["status"] == "passed"} >= {
        "pytorch", "onnx", "torchscript", "int8-onnx", "int8-torchscript", "int8-static", "fp16", "ort"}
    ops = {n.op_type for n in onnx.load(str(tmp_path / "a" / "model.onnx")).graph.node}
    assert "BatchNormalization" not in ops and "Conv" in ops


def test_a_build_whose_output_is_a_log_says_what_it_does_from_the_start(tmp_path):
    """Output to a file or a pipe draws no progress bar: the stages and each epoch are plain lines instead."""
    result = runner.invoke(app, ["build", "--dataset", "synthetic", "--epochs", "2", "--formats", "onnx",
                                 "--no-bench", "--out", str(tmp_path / "a")])
    assert result.exit_code == 0, result.output
    lines = result.output.splitlines()
    assert lines[0] == "build: reading synthetic data"
    assert lines[1].startswith("build: training the seed network into ")
    epochs = [line for line in lines if re.match(r"epoch \d/\d: loss ", line)]
    assert [e.split(":")[0] for e in epochs] == ["epoch 1/2", "epoch 2/2"] and "test accuracy" in epochs[0]
    assert lines.index(epochs[0]) < lines.index(next(x for x in lines if x.startswith("exporting")))
