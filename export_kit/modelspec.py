"""Checkpoints that describe themselves, and models addressed as ``package.module:factory``.

A checkpoint names the factory that builds its architecture, so any package (not only ``train``) can be the
source of a model, and ``export_kit`` needs no import of it. Loading always uses ``weights_only=True``: a
checkpoint is data, and a pickle that would run code is refused rather than executed.
"""

from __future__ import annotations

import importlib
from pathlib import Path
from typing import Any

from export_kit.errors import CheckpointError, UsageError
from export_kit.fileio import atomic_path

CHECKPOINT_FORMAT = "exportkit-checkpoint"
CHECKPOINT_VERSION = 1


def load_factory(spec: str):
    """Resolve ``package.module:callable``; a spec that does not resolve is a usage error, not a crash."""
    module_name, _, attr = spec.partition(":")
    if not module_name or not attr:
        raise UsageError(f"model factory must look like package.module:function, got {spec!r}")
    try:
        module = importlib.import_module(module_name)
    except ImportError as exc:
        raise UsageError(f"cannot import {module_name!r} for model factory {spec!r}: {exc}") from None
    factory = getattr(module, attr, None)
    if not callable(factory):
        raise UsageError(f"{module_name!r} has no callable {attr!r} (model factory {spec!r})")
    return factory


def save_checkpoint(path: Path, model, *, factory: str, kwargs: dict, meta: dict[str, Any]) -> None:
    """Write weights plus everything needed to rebuild and use the model, atomically."""
    import torch

    payload = {"format": CHECKPOINT_FORMAT, "version": CHECKPOINT_VERSION, "factory": factory,
               "kwargs": kwargs, "state_dict": model.state_dict(), **meta}
    with atomic_path(Path(path)) as tmp:
        torch.save(payload, tmp)


def read_checkpoint(path: Path) -> dict[str, Any]:
    """Load a checkpoint's dictionary safely, turning every way it can be wrong into one CheckpointError."""
    import pickle

    import torch

    path = Path(path)
    if not path.is_file():
        raise CheckpointError(f"checkpoint {path} does not exist; train one with `exportkit train` or pass "
                              "--checkpoint FILE")
    try:
        payload = torch.load(path, map_location="cpu", weights_only=True)
    except pickle.UnpicklingError as exc:
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise CheckpointError(f"{path} was refused by the safe loader (weights_only=True): {first}") from None
    except Exception as exc:
        raise CheckpointError(f"{path} is not a readable PyTorch checkpoint ({type(exc).__name__}: "
                              f"{str(exc).splitlines()[0] if str(exc) else 'truncated or corrupt'})") from None
    if not isinstance(payload, dict) or payload.get("format") != CHECKPOINT_FORMAT:
        raise CheckpointError(f"{path} is not an exportkit checkpoint (no 'format': '{CHECKPOINT_FORMAT}')")
    if payload.get("version") != CHECKPOINT_VERSION:
        raise CheckpointError(f"{path} has checkpoint version {payload.get('version')!r}; this exportkit "
                              f"reads version {CHECKPOINT_VERSION}")
    return payload


def load_checkpoint(path: Path):
    """Rebuild the model a checkpoint describes, in eval mode, and return it with the checkpoint's metadata."""
    payload = read_checkpoint(path)
    model = load_factory(payload["factory"])(**payload.get("kwargs", {}))
    try:
        model.load_state_dict(payload["state_dict"])
    except RuntimeError as exc:
        detail = next((ln.strip() for ln in str(exc).splitlines()[1:] if ln.strip()), str(exc))
        raise CheckpointError(f"{path} does not fit {payload['factory']}: {detail}") from None
    model.eval()
    meta = {k: v for k, v in payload.items() if k != "state_dict"}
    return model, meta
