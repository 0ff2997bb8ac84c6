"""Dataset readers: both on-disk layouts, the decode cache, precedence of sources, and every bad folder."""

import pickle
from pathlib import Path

import numpy as np
import pytest
from conftest import SHARED_CIFAR, write_image_folder

from export_kit.errors import DataError
from export_kit.model.datasets import cifar, load_dataset
from export_kit.model.datasets.cifar import load_cifar10, resolve_data_dir

CLASSES = list(cifar.CIFAR10_CLASSES)


def test_image_folder_layout_is_read_with_labels_in_class_order(tmp_path):
    write_image_folder(tmp_path, CLASSES, per_class=3)
    data = load_cifar10(tmp_path, progress=False)
    assert data.train.images.shape == (30, 32, 32, 3) and data.train.images.dtype == np.uint8
    assert data.classes == CLASSES and np.bincount(data.test.labels).tolist() == [3] * 10
    assert data.provenance["layout"] == "imagefolder" and len(data.provenance["sha256"]) == 64


def test_second_load_uses_the_cache_and_decodes_nothing(tmp_path, monkeypatch):
    write_image_folder(tmp_path, CLASSES, per_class=2)
    first = load_cifar10(tmp_path, progress=False)
    monkeypatch.setattr(cifar, "_write_cache", lambda *a, **k: pytest.fail("decoded again"))
    second = load_cifar10(tmp_path, progress=False)
    assert np.array_equal(first.train.images, second.train.images)


def test_a_corrupt_image_is_skipped_and_counted(tmp_path):
    write_image_folder(tmp_path, CLASSES, per_class=2)
    (tmp_path / "train" / "cat" / "0000.png").write_bytes(b"not an image")
    data = load_cifar10(tmp_path, progress=False)
    assert len(data.train) == 19 and data.provenance["skipped_corrupt"] == 1


def test_torchvision_pickle_layout(tmp_path):
    base = tmp_path / "cifar-10-batches-py"
    base.mkdir()
    rng = np.random.default_rng(0)
    for name, n in [*((f"data_batch_{i}", 4) for i in range(1, 6)), ("test_batch", 6)]:
        batch = {b"data": rng.integers(0, 256, (n, 3072), dtype=np.uint8), b"labels": list(range(n))}
        (base / name).write_bytes(pickle.dumps(batch))
    data = load_cifar10(tmp_path, progress=False)
    assert data.train.images.shape == (20, 32, 32, 3) and len(data.test) == 6
    raw = pickle.loads((base / "test_batch").read_bytes())[b"data"][1]
    assert np.array_equal(data.test.images[1], raw.reshape(3, 32, 32).transpose(1, 2, 0))


def test_a_pickle_batch_that_would_run_code_is_refused(tmp_path):
    marker = tmp_path / "ran"

    class Exploit:
        def __reduce__(self):
            return (open, (str(marker), "w"))

    base = tmp_path / "cifar-10-batches-py"
    base.mkdir()
    for name in [*(f"data_batch_{i}" for i in range(1, 6)), "test_batch"]:
        (base / name).write_bytes(pickle.dumps({b"data": Exploit()}))
    with pytest.raises(DataError, match="refusing to load"):
        load_cifar10(tmp_path, progress=False)
    assert not marker.exists()


@pytest.mark.parametrize("make, fragment, code", [
    (lambda root: root.mkdir(), "neither", 3),
    (lambda root: (root / "train" / "a").mkdir(parents=True) or (root / "test").mkdir(), "class folder", 3),
    (lambda root: write_image_folder(root, ["a", "b"], 0), "has no images", 2),
    (lambda root: write_image_folder(root, ["a", "b"], 2) or next((root / "test" / "b").iterdir()).unlink()
     or next((root / "test" / "b").iterdir()).unlink(), "test/b has no images", 2),
])
def test_bad_layouts_say_what_was_expected(tmp_path, make, fragment, code):
    from export_kit.errors import ExportKitError

    root = tmp_path / "d"
    make(root)
    with pytest.raises(ExportKitError, match=fragment) as info:
        load_cifar10(root, progress=False)
    assert info.value.exit_code == code


def test_source_precedence_argument_then_env_then_local(monkeypatch, tmp_path):
    monkeypatch.setenv("EXPORTKIT_DATA", str(tmp_path / "env"))
    assert resolve_data_dir(tmp_path / "arg") == (tmp_path / "arg", "--data-dir")
    assert resolve_data_dir(None) == (tmp_path / "env", "EXPORTKIT_DATA")
    monkeypatch.delenv("EXPORTKIT_DATA")
    assert resolve_data_dir(None) == (Path("data"), "./data")


def test_offline_download_failure_is_one_clear_error(monkeypatch, tmp_path):
    import torchvision.datasets

    def offline(*args, **kwargs):
        raise OSError("network unreachable")

    monkeypatch.chdir(tmp_path)
    monkeypatch.setattr(torchvision.datasets, "CIFAR10", offline)
    with pytest.raises(DataError, match="download failed") as info:
        load_cifar10(None, progress=False)
    assert "EXPORTKIT_DATA" in str(info.value)


def test_synthetic_is_deterministic_and_balanced():
    a, b = load_dataset("synthetic"), load_dataset("synthetic")
    assert np.array_equal(a.train.images, b.train.images)
    assert np.bincount(a.test.labels).tolist() == [100] * 10


@pytest.mark.skipif(not SHARED_CIFAR.is_dir(), reason="CIFAR-10 (JPEG) not present beside the checkout")
def test_real_cifar10_jpegs_decode(tmp_path):
    """A few hundred real images through the ImageFolder reader (symlinked, so nothing is copied)."""
    for split in ("train", "test"):
        for name in CLASSES:
            folder = tmp_path / split / name
            folder.mkdir(parents=True)
            for src in sorted((SHARED_CIFAR / split / name).iterdir())[:20]:
                (folder / src.name).symlink_to(src)
    data = load_cifar10(tmp_path, progress=False)
    assert data.train.images.shape == (200, 32, 32, 3) and data.provenance["dataset"] == "cifar10"
    assert 80 < data.test.images.mean() < 160  # real photographs, not blank decodes


def test_fewer_than_ten_classes_train_a_model_with_that_many_outputs(tmp_path):
    from export_kit.model.spec import load_checkpoint
    from train.loop import TrainConfig, train

    write_image_folder(tmp_path / "d", ["left", "middle", "right"], per_class=4)
    data = load_cifar10(tmp_path / "d", progress=False)
    assert data.classes == ["left", "middle", "right"] and data.provenance["dataset"] == "imagefolder"
    train(data, TrainConfig(epochs=1, batch_size=4), tmp_path / "c.pt", progress=False)
    model, meta = load_checkpoint(tmp_path / "c.pt")
    assert meta["classes"] == ["left", "middle", "right"] and model.classifier[-1].out_features == 3


def test_a_decoded_folder_is_memory_mapped_and_read_in_windows_that_match_it(tmp_path):
    write_image_folder(tmp_path / "d", ["a", "b", "c"], 5, size=12)
    (tmp_path / "d" / "test" / "b" / "0002.png").write_bytes(b"not an image")  # skipped, counted
    data = load_cifar10(tmp_path / "d", progress=False)
    test = data.test
    assert isinstance(test.images, np.memmap) and len(test) == 14 == len(test.images)
    assert data.provenance["skipped_corrupt"] == 1
    for start, stop in ((0, 14), (3, 9), (13, 40)):
        window = test.rows(start, stop)
        assert type(window) is np.ndarray and np.array_equal(window, np.asarray(test.images[start:stop]))
    again = load_cifar10(tmp_path / "d", progress=False)  # from the cache: the same pixels and labels
    assert np.array_equal(again.test.images, test.images) and np.array_equal(again.test.labels, test.labels)
