"""CIFAR-10 from disk (ImageFolder JPEGs or torchvision's pickled batches), a decode cache, read into one uint8 form.

Decoding 60,000 JPEGs costs seconds on every run, so the first run writes the decoded uint8 arrays to a cache
keyed by the file listing; later runs memory-map it. Nothing here normalizes: images stay uint8 HWC until the
model's preprocessing (which travels with the checkpoint and the manifest) turns them into tensors.
"""

from __future__ import annotations

import hashlib
import io
import json
import os
import pickle
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path
from typing import ClassVar

import numpy as np

from export_kit.errors import DataError, EmptyClassError, MixedSizesError
from export_kit.model.datasets.base import Dataset, Split
from export_kit.model.datasets.decode import CONTRACT
from export_kit.model.geometry import Geometry

CIFAR10_CLASSES = (
    "airplane", "automobile", "bird", "cat", "deer", "dog", "frog", "horse", "ship", "truck",
)
_CHUNK = 2000
#: Refused files listed by name in the provenance (all are counted).
SKIPPED_LISTED = 20
IMAGE_SUFFIXES = {".jpg", ".jpeg", ".png", ".bmp", ".ppm", ".webp"}
HOW_TO_PROVIDE = (
    "pass --data-dir DIR, set EXPORTKIT_DATA=DIR, or place CIFAR-10 in ./data "
    "(ImageFolder train/<class>/*.jpg + test/<class>/*.jpg, or torchvision's cifar-10-batches-py/)"
)


def cache_dir() -> Path:
    return Path(os.environ.get("EXPORTKIT_CACHE", Path.home() / ".cache" / "exportkit"))


def resolve_data_dir(data_dir: str | os.PathLike | None) -> tuple[Path, str]:
    """Pick the data folder by precedence: the argument, then ``$EXPORTKIT_DATA``, then ``./data``."""
    if data_dir is not None:
        return Path(data_dir), "--data-dir"
    if os.environ.get("EXPORTKIT_DATA"):
        return Path(os.environ["EXPORTKIT_DATA"]), "EXPORTKIT_DATA"
    return Path("data"), "./data"


def load_cifar10(data_dir: str | os.PathLike | None = None, *, allow_download: bool = True,
                 progress: bool = True, geometry: Geometry | None = None) -> Dataset:
    """Load CIFAR-10 (or any ImageFolder) from the first source that exists; download into ./data only as the last
    resort. ``geometry`` resizes and crops each image as it is decoded."""
    root, origin = resolve_data_dir(data_dir)
    if not root.exists():
        if origin != "./data" or not allow_download:
            raise DataError(f"CIFAR-10 not found at {root} (from {origin}); {HOW_TO_PROVIDE}")
        root = _download(root)
    layout = detect_layout(root)
    if layout is None:
        raise DataError(f"{root} (from {origin}) holds neither train/<class>/ + test/<class>/ image folders "
                        f"nor cifar-10-batches-py/; {HOW_TO_PROVIDE}")
    kind, base = layout
    if kind == "pickle":
        return _load_pickled(base).resized(geometry)
    return _load_image_folder(base, progress=progress, geometry=geometry)


def detect_layout(root: Path) -> tuple[str, Path] | None:
    """Return ``("imagefolder", root)`` or ``("pickle", batches_dir)``, or None when neither layout is there."""
    for candidate in (root / "cifar-10-batches-py", root):
        if (candidate / "data_batch_1").is_file() and (candidate / "test_batch").is_file():
            return "pickle", candidate
    if (root / "test").is_dir():  # train/ is optional: it only calibrates static int8 (and trains)
        return "imagefolder", root
    return None


def _download(root: Path) -> Path:
    try:
        from torchvision.datasets import CIFAR10

        CIFAR10(str(root), train=True, download=True)
        CIFAR10(str(root), train=False, download=True)
    except Exception as exc:  # any network or disk failure means the same thing to the user
        raise DataError(f"CIFAR-10 not found and the download failed ({type(exc).__name__}); "
                        f"{HOW_TO_PROVIDE}") from None
    return root


class _BatchUnpickler(pickle.Unpickler):
    """Unpickles CIFAR batch files while refusing every global but numpy's array constructors."""

    _ALLOWED: ClassVar[set[tuple[str, str]]] = {
        ("numpy.core.multiarray", "_reconstruct"), ("numpy._core.multiarray", "_reconstruct"),
        ("numpy", "ndarray"), ("numpy", "dtype"),
    }

    def find_class(self, module: str, name: str):
        if (module, name) not in self._ALLOWED:
            raise pickle.UnpicklingError(f"refusing to load {module}.{name}")
        return super().find_class(module, name)


def _read_batch(path: Path) -> dict:
    try:
        return _BatchUnpickler(io.BytesIO(path.read_bytes()), encoding="bytes").load()
    except Exception as exc:
        raise DataError(f"{path} is not a CIFAR-10 batch file: {exc}") from None


def _load_pickled(base: Path) -> Dataset:
    def split(names: list[str]) -> Split:
        batches = [_read_batch(base / n) for n in names]
        data = np.concatenate([np.asarray(b[b"data"], dtype=np.uint8) for b in batches])
        labels = np.concatenate([np.asarray(b[b"labels"], dtype=np.int64) for b in batches])
        return Split(data.reshape(-1, 3, 32, 32).transpose(0, 2, 3, 1).copy(), labels)

    train = split([f"data_batch_{i}" for i in range(1, 6)])
    test = split(["test_batch"])
    digest = hashlib.sha256()
    for name in [*(f"data_batch_{i}" for i in range(1, 6)), "test_batch"]:
        digest.update((base / name).read_bytes())
    provenance = {"dataset": "cifar10", "layout": "torchvision-pickle", "path": str(base.resolve()),
                  "train_images": len(train), "test_images": len(test), "sha256": digest.hexdigest()}
    return Dataset(train, test, list(CIFAR10_CLASSES), provenance)


def _listing(root: Path) -> tuple[list[str], dict[str, list[tuple[str, int]]]]:
    """Class names (from train/, else test/) and, per split present, every image file with its label, in sorted
    order. Only regular files (or links to one) count: a dangling or looping link, a FIFO or a device named like an
    image would fail or block the decoder, so each is left out and named once."""
    splits = [s for s in ("train", "test") if (root / s).is_dir()]
    classes = sorted(p.name for p in (root / splits[0]).iterdir() if p.is_dir())
    if len(classes) < 2:
        raise DataError(f"{root / splits[0]} has {len(classes)} class folder(s); expected one folder per class")
    files: dict[str, list[tuple[str, int]]] = {}
    others: list[Path] = []
    for split in splits:
        entries = []
        for label, name in enumerate(classes):
            folder = root / split / name
            if not folder.is_dir():
                raise DataError(f"{folder} is missing: train/ and test/ must have the same class folders")
            named = [(p, p.is_file()) for p in sorted(folder.iterdir()) if p.suffix.lower() in IMAGE_SUFFIXES]
            others += [p for p, regular in named if not regular]
            found = [(str(p), label) for p, regular in named if regular]
            if not found:
                raise EmptyClassError(f"{folder} has no images ({', '.join(sorted(IMAGE_SUFFIXES))}): every class "
                                      "folder needs at least one, or its label would never be checked")
            entries += found
        if not entries:
            raise DataError(f"{root / split} has no images ({', '.join(sorted(IMAGE_SUFFIXES))})")
        files[split] = entries
    if others:
        print(f"left out {len(others)} entr{'y' if len(others) == 1 else 'ies'} named like images that are not "
              f"regular files (a dangling or looping link, a FIFO, a device), e.g. {others[0]}")
    return classes, files


def _listing_key(root: Path, files: dict[str, list[tuple[str, int]]], geometry: Geometry | None) -> str:
    digest = hashlib.sha256(f"{root.resolve()}|decode v{CONTRACT['version']}".encode())
    digest.update(json.dumps(geometry.to_dict() if geometry else None, sort_keys=True).encode())
    for split, entries in files.items():
        for path, label in entries:
            digest.update(f"{split}|{os.path.relpath(path, root)}|{label}|{os.path.getsize(path)}\n".encode())
    return digest.hexdigest()[:20]


def mixed_sizes(shapes: set[tuple[int, ...]]) -> MixedSizesError:
    """The error for images of several (H, W, C) sizes in a folder read without a resize."""
    shown = ", ".join(f"{h}x{w}" for h, w, _ in sorted(shapes)[:4]) + (", ..." if len(shapes) > 4 else "")
    error = MixedSizesError(f"images of {len(shapes)} different sizes ({shown}) in one folder: give build --resize N "
                            "(shorter side to N pixels, then a centre crop to --input-shape)")
    error.sizes = f"{len(shapes)} different sizes ({shown})"
    return error


def _decode_chunk(paths: list[str], geometry: Geometry | None = None) -> tuple[np.ndarray, list[tuple[int, str]]]:
    """Decode images in a worker under the decoding contract (:mod:`export_kit.model.datasets.decode`: RGB, then
    ``geometry``); return the stacked pixels (uint8, or float32 from the float resize) and (index, reason) of each
    file refused. Each image's size is checked as it is decoded, so one of another size stops the chunk at once
    rather than after the rest are held in memory."""
    from export_kit.model.datasets.decode import Refused, open_rgb

    dtype = geometry.dtype if geometry else np.uint8
    out, bad = [], []
    for i, path in enumerate(paths):
        try:
            rgb = open_rgb(path)
        except Refused as exc:
            bad.append((i, str(exc)))
            continue
        out.append(np.asarray(geometry.apply(rgb) if geometry else rgb, dtype=dtype))
        if out[-1].shape != out[0].shape:
            raise mixed_sizes({out[0].shape, out[-1].shape})
    return (np.stack(out) if out else np.empty((0, 0, 0, 3), dtype)), bad


def _chunk_size(paths: list[str], geometry: Geometry | None) -> int:
    """Images per decode task: about 48 MB of pixels, so a chunk of 224x224 photos holds ~300, of CIFAR's
    32x32 ones 2,000 (the most), and memory stays flat however many images a split has."""
    if geometry is not None:
        per_image = geometry.crop[0] * geometry.crop[1] * 3 * np.dtype(geometry.dtype).itemsize
    else:
        arr, _ = _decode_chunk(paths[:1])
        per_image = max(1, int(np.prod(arr.shape[1:]))) if len(arr) else 3 * 32 * 32
    return int(min(_CHUNK, max(16, 48_000_000 // per_image)))


def _decode_split(entries: list[tuple[str, int]], bar, task, geometry: Geometry | None, folder: Path,
                  name: str) -> tuple[int, list[dict]]:
    """Decode one split in parallel chunks, appending each to ``folder/<name>_images.npy`` as it arrives, so no
    split is ever whole in memory (rows of undecodable files are left as zeros at the end, past the count); write
    its labels beside it. Returns how many images decoded and {path, reason} of those refused."""
    paths = [p for p, _ in entries]
    size = _chunk_size(paths, geometry)
    starts = range(0, len(paths), size)
    shape, row_bytes, labels, skipped, done = None, 0, [], [], 0
    workers = max(1, min(len(starts), os.cpu_count() or 1))
    with ProcessPoolExecutor(max_workers=workers) as pool, open(folder / f"{name}_images.npy", "wb") as out:
        results = pool.map(_decode_chunk, [paths[s:s + size] for s in starts], [geometry] * len(starts))
        for start, (arr, bad) in zip(starts, results, strict=True):
            count, bad_set = min(size, len(paths) - start), {i for i, _ in bad}
            labels += [entries[start + i][1] for i in range(count) if i not in bad_set]
            skipped += [{"path": paths[start + i], "reason": reason} for i, reason in bad]
            if len(arr):
                if shape is None:
                    shape, row_bytes = arr.shape[1:], arr[0].nbytes
                    np.lib.format.write_array_header_1_0(out, {"descr": np.lib.format.dtype_to_descr(arr.dtype),
                                                               "fortran_order": False,
                                                               "shape": (len(paths), *shape)})
                elif arr.shape[1:] != shape:
                    raise mixed_sizes({shape, arr.shape[1:]})
                out.write(np.ascontiguousarray(arr).tobytes())
                done += len(arr)
            bar.advance(task, count)
        if shape is None:
            raise DataError(f"none of the {len(paths)} images under {Path(paths[0]).parents[1]} could be decoded")
        out.write(bytes((len(paths) - done) * row_bytes))
    np.save(folder / f"{name}_labels.npy", np.array(labels, dtype=np.int64))
    return done, skipped


def _read_split(cache: Path, name: str, count: int | None) -> Split:
    """A split from the cache: pixels memory-mapped (read from disk as they are used), labels in memory; a split
    the folder does not have (``count`` None: no train/) is empty."""
    if count is None:
        test = np.load(cache / "test_images.npy", mmap_mode="r")
        return Split(np.zeros((0, *test.shape[1:]), test.dtype), np.empty(0, np.int64))
    return Split(np.load(cache / f"{name}_images.npy", mmap_mode="r")[:count], np.load(cache / f"{name}_labels.npy"))


def _load_image_folder(root: Path, *, progress: bool, geometry: Geometry | None = None) -> Dataset:
    classes, files = _listing(root)
    key = _listing_key(root, files, geometry)
    cache = cache_dir() / f"imagefolder-{key}"
    if not (cache / "meta.json").is_file():
        _write_cache(root, files, cache, progress, geometry)
    meta = json.loads((cache / "meta.json").read_text())
    train, test = _read_split(cache, "train", meta.get("train")), _read_split(cache, "test", meta["test"])
    digest = hashlib.sha256(key.encode())
    for labels in (train.labels, test.labels):
        digest.update(labels.tobytes())
    skipped = meta["skipped"]
    if skipped:  # said on every run, from the cache too, not only when the files were decoded
        first = skipped[0]
        print(f"skipped {len(skipped)} image(s) outside the decoding contract, e.g. {first['path']}: "
              f"{first['reason']}")
    provenance = {"dataset": "cifar10" if classes == list(CIFAR10_CLASSES) else "imagefolder",
                  "layout": "imagefolder", "path": str(root.resolve()), "train_images": len(train),
                  "test_images": len(test), "skipped_corrupt": len(skipped), "skipped": skipped[:SKIPPED_LISTED],
                  "cache": str(cache), "sha256": digest.hexdigest()}
    return Dataset(train, test, classes, provenance)


def _write_cache(root: Path, files, cache: Path, progress: bool, geometry: Geometry | None) -> None:
    """Decode every split into a fresh folder and rename it into place, so a cache folder with ``meta.json`` is
    always complete (an interrupted decode leaves only a temporary folder, removed here or by the next run)."""
    import shutil
    import tempfile

    from export_kit.progress import images_bar

    total = sum(len(v) for v in files.values())
    cache.parent.mkdir(parents=True, exist_ok=True)
    work = Path(tempfile.mkdtemp(prefix=f".{cache.name}.partial-", dir=cache.parent))
    try:
        counts, skipped = {}, []
        with images_bar(progress) as bar:
            task = bar.add_task(f"decoding {total} images from {root}", total=total)
            for name, entries in files.items():
                counts[name], bad = _decode_split(entries, bar, task, geometry, work, name)
                skipped += bad
        (work / "meta.json").write_text(json.dumps({**counts, "skipped": skipped}))
        if cache.exists():
            shutil.rmtree(cache)
        os.replace(work, cache)
    finally:
        shutil.rmtree(work, ignore_errors=True)
