"""Checkpoints that describe themselves, and models addressed as ``package.module:factory``.

A checkpoint names the factory that builds its architecture, so any package (not only ``train``) can be the
source of a model, and ``export_kit`` needs no import of it. Loading always uses ``weights_only=True``: a
checkpoint is data, and a pickle that would run code is refused rather than executed. The factory it names is
code, so it must be one the user allowed (:mod:`export_kit.safeio.trust`).
"""

from __future__ import annotations

import importlib
import os
import sys
import zipfile
from collections.abc import Iterable
from pathlib import Path
from typing import Any

from export_kit.errors import (
    CheckpointError,
    ExportKitError,
    FactoryImportError,
    UnavailableError,
    UsageError,
    first_line,
)
from export_kit.safeio.atomic import atomic_path
from export_kit.safeio.limits import check_zip
from export_kit.safeio.trust import check_factory

CHECKPOINT_FORMAT = "exportkit-checkpoint"
CHECKPOINT_VERSION = 1


def _import_like_python(module_name: str):
    """Import as ``python -m`` would find it: installed packages and PYTHONPATH first, then the current folder.
    The folder goes last on the path, so a file there never shadows an installed module (``train``, ``torch``);
    it only supplies a module found nowhere else, such as the user's ``mymodel.py``."""
    try:
        return importlib.import_module(module_name)
    except ModuleNotFoundError as exc:
        here = os.getcwd()
        if exc.name != module_name.split(".")[0] or here in sys.path:
            raise
        sys.path.append(here)
        return importlib.import_module(module_name)


def load_factory(spec: str):
    """Resolve ``package.module:callable``; a spec that does not resolve is a usage error, not a crash."""
    module_name, _, attr = spec.partition(":")
    if not module_name or not attr:
        raise UsageError(f"model factory must look like package.module:function, got {spec!r}")
    try:
        module = _import_like_python(module_name)
    except ImportError as exc:
        raise FactoryImportError(f"cannot import {module_name!r} for model factory {spec!r}: {exc} (looked in the "
                                 "current folder and on PYTHONPATH)") from None
    except Exception as exc:
        raise UsageError(f"importing {module_name!r} for model factory {spec!r} failed: {first_line(exc)}") from None
    factory = getattr(module, attr, None)
    if not callable(factory):
        raise UsageError(f"{module_name!r} has no callable {attr!r} (model factory {spec!r})")
    return factory


def call_factory(spec: str, kwargs: dict | None = None, error: type[ExportKitError] = UsageError):
    """Build the model: the factory's own failure (an exception, ``sys.exit``, a non-module) is one error."""
    import torch

    try:
        model = load_factory(spec)(**(kwargs or {}))
    except ExportKitError:
        raise
    except (Exception, SystemExit) as exc:
        raise error(f"model factory {spec!r} failed: {first_line(exc)}") from None
    if not isinstance(model, torch.nn.Module):
        raise error(f"model factory {spec!r} returned {type(model).__name__}, not a torch.nn.Module")
    return model


def save_checkpoint(path: Path, model, *, factory: str, kwargs: dict, meta: dict[str, Any]) -> None:
    """Write weights plus everything needed to rebuild and use the model, atomically."""
    import torch

    payload = {"format": CHECKPOINT_FORMAT, "version": CHECKPOINT_VERSION, "factory": factory,
               "kwargs": kwargs, "state_dict": model.state_dict(), **meta}
    with atomic_path(Path(path)) as tmp:
        torch.save(payload, tmp)


def safe_load(path: Path) -> Any:
    """The one way exportkit reads a ``torch.save`` file: a zip of bounded size, tensors and plain data only
    (``weights_only=True``), every way it can be wrong one CheckpointError that never advises the unsafe way."""
    import pickle

    import torch

    if not zipfile.is_zipfile(path):
        raise CheckpointError(f"{path} is not a readable PyTorch checkpoint (truncated, corrupt, or not the zip "
                              "archive torch.save writes)")
    check_zip(path, CheckpointError)
    try:
        payload = torch.load(path, map_location="cpu", weights_only=True)
    except pickle.UnpicklingError:
        raise CheckpointError(f"{path} holds objects that are not plain tensors and data, so it was refused "
                              "(checkpoints are read as data only, never executed)") from None
    except Exception as exc:
        raise CheckpointError(f"{path} is not a readable PyTorch checkpoint ({type(exc).__name__}; truncated, "
                              "corrupt or not a checkpoint)") from None
    return payload


def read_checkpoint(path: Path) -> dict[str, Any]:
    """Load an exportkit checkpoint's dictionary safely (:func:`safe_load`) and check its format and version."""
    path = Path(path)
    if not path.is_file():
        raise CheckpointError(f"checkpoint {path} does not exist; train one with `exportkit train` or pass "
                              "--checkpoint FILE")
    payload = safe_load(path)
    if not isinstance(payload, dict) or payload.get("format") != CHECKPOINT_FORMAT:
        raise CheckpointError(f"{path} is not an exportkit checkpoint (no 'format': '{CHECKPOINT_FORMAT}')")
    if payload.get("version") != CHECKPOINT_VERSION:
        raise CheckpointError(f"{path} has checkpoint version {payload.get('version')!r}; this exportkit "
                              f"reads version {CHECKPOINT_VERSION}")
    return payload


def load_checkpoint(path: Path, factories: Iterable[str] = (), *, any_factory: bool = False):
    """Rebuild the model a checkpoint describes, in eval mode, and return it with the checkpoint's metadata.

    The factory it names must be in ``factories`` (or the training stage's own); ``any_factory`` is for a
    checkpoint whose bytes a trusted signature pins.
    """
    payload = read_checkpoint(path)
    spec, kwargs = payload.get("factory"), payload.get("kwargs", {})
    check_factory(spec, kwargs, [f"{spec}"] if any_factory else factories, str(path))
    try:
        model = call_factory(spec, kwargs, CheckpointError)
    except FactoryImportError as exc:
        raise UnavailableError(f"eager reference not loadable here: {exc}") from None
    try:
        model.load_state_dict(payload["state_dict"])
    except (RuntimeError, TypeError, KeyError, AttributeError) as exc:
        detail = next((ln.strip() for ln in str(exc).splitlines()[1:] if ln.strip()), str(exc))
        raise CheckpointError(f"{path} does not fit {payload['factory']}: {detail}") from None
    model.eval()
    meta = {k: v for k, v in payload.items() if k != "state_dict"}
    return model, meta
