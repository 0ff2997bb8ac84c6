"""User-facing errors.

Anything derived from :class:`ExportKitError` is a problem with the user's input or environment: the CLI prints
its message on one line and exits with its ``exit_code``. Any other exception is a bug in exportkit and keeps
its traceback.
"""

from __future__ import annotations

import re

#: Exit codes, documented in the README's "Errors" section.
EXIT_OK = 0
EXIT_CHECK_FAILED = 1
EXIT_USAGE = 2
EXIT_BAD_INPUT = 3
EXIT_UNAVAILABLE = 4
EXIT_UNTRUSTED = 5
EXIT_INTERRUPTED = 130


class ExportKitError(Exception):
    """Base class of every error caused by input rather than by a bug."""

    exit_code = EXIT_BAD_INPUT


class UsageError(ExportKitError):
    """A command-line value is out of range or names something that does not exist."""

    exit_code = EXIT_USAGE


class DataError(ExportKitError):
    """The dataset is missing, has the wrong layout, or cannot be decoded."""


class EmptyClassError(UsageError):
    """A class folder of the data named on the command line holds no image."""


class MixedSizesError(UsageError):
    """Images of several sizes in a folder read without a resize: the command line lacks --resize."""

    sizes: str = "several sizes"  # "3 different sizes (32x32, 64x48, ...)", for messages that name another cause


class DataMismatchError(UsageError):
    """The data given with --data-dir or --dataset is not what the folder's model was built with (other images,
    shapes or classes): the command line names the wrong data."""


class CheckpointError(ExportKitError):
    """A checkpoint is missing, corrupt, unsafe, or does not fit the architecture it names."""


class ManifestError(ExportKitError):
    """An artifacts folder has no manifest, a malformed one, or one that points outside the folder."""


class ExportError(ExportKitError):
    """An exporter could not produce a valid artifact for this model."""


class PartialExportError(ExportError):
    """A format that writes several files made some (``made``); the others failed, for the message's reason."""

    def __init__(self, made: list, reason: str) -> None:
        super().__init__(reason)
        self.made = made


class UnavailableError(ExportKitError):
    """A runtime, provider or device that was asked for is not installed or not present."""

    exit_code = EXIT_UNAVAILABLE


class FactoryImportError(UsageError):
    """A model factory's module is not installed here (on another machine it may be)."""


class UntrustedCodeError(UnavailableError):
    """A file whose loader runs code, in a folder the user has not trusted: its rows are not run."""

    exit_code = EXIT_UNTRUSTED


class UnsafeWriteError(ExportKitError):
    """A write would go through a symbolic link planted in a folder."""


def first_line(exc: BaseException) -> str:
    """``Type: first line of the message``, safe for exceptions whose message is empty, without the terminal
    colour codes some libraries put in their messages."""
    text = re.sub(r"\x1b\[[0-9;]*m", "", str(exc)).strip()
    return f"{type(exc).__name__}: {text.splitlines()[0]}" if text else type(exc).__name__


#: How much of a failure's full text the manifest and report keep (a torch traceback can run to megabytes).
DETAILS_MAX_CHARS = 20_000


def _plain(text: str) -> str:
    return re.sub(r"\x1b\[[0-9;]*m", "", text).strip()


def meaningful_line(exc: BaseException) -> str:
    """The line that says what went wrong. Exporters wrap the real error: torch.onnx's message opens with which
    step failed and "Next steps" advice, and the error itself is its cause (``raise ... from``) and the line under
    its "## Exception summary". So: the innermost cause's first line, and the outer error's first sentence after
    it as context."""
    if isinstance(exc, ExportKitError):  # exportkit's own messages already lead with the reason
        return first_line(exc)
    root = exc
    while root.__cause__ is not None and root.__cause__ is not root:
        root = root.__cause__
    text = _plain(str(exc))
    summary = re.search(r"## Exception summary\s*\n\s*(?:<class '([\w.]+)'>: )?(.+)", text)
    if root is exc and summary:
        kind = (summary.group(1) or "").rsplit(".", 1)[-1]
        inner = f"{kind}: {summary.group(2).strip()}" if kind else summary.group(2).strip()
    elif root is not exc:
        inner = first_line(root)
    else:
        return first_line(exc)
    outer = re.split(r"(?<=\.)\s", text.splitlines()[0], maxsplit=1)[0] if text else ""
    return f"{inner} ({type(exc).__name__}: {outer})" if outer else inner


def full_text(exc: BaseException) -> str:
    """The whole failure, causes and traceback included, capped at :data:`DETAILS_MAX_CHARS` (its end kept,
    where the innermost error is)."""
    import traceback

    text = _plain("".join(traceback.format_exception(exc)))
    return text if len(text) <= DETAILS_MAX_CHARS else "...\n" + text[-DETAILS_MAX_CHARS:]
