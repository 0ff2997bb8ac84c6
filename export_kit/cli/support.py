"""What every ``exportkit`` command shares: option types, one-line user errors with documented exit codes, and
the exit code a report earns."""

from __future__ import annotations

import functools
from pathlib import Path
from typing import Annotated

import typer

from export_kit import errors
from export_kit.safeio.escape import terminal

#: Set by the root ``--debug`` option: user errors then keep their traceback.
STATE = {"debug": False}

BenchProcesses = Annotated[int, typer.Option(min=0, max=100, help="bench worker processes, each one latency "
                                                                  "sample; 0 times in this process (no interval)")]
DataDir = Annotated[Path | None, typer.Option(help="CIFAR-10 folder (else $EXPORTKIT_DATA, else ./data)")]
Dataset = Annotated[str, typer.Option(help="cifar10, or synthetic (generated, for offline demos)")]
Folder = Annotated[Path, typer.Option("--artifacts", help="artifacts folder written by build")]
TrustKeys = Annotated[list[Path] | None, typer.Option("--trust-key", help="public key (exportkit-ed25519 line) "
                                                      "whose signed folders may load code-bearing files")]
TrustCode = Annotated[bool, typer.Option(help="load code-bearing files (TorchScript) even from an unsigned folder")]
AllowFactory = Annotated[list[str] | None, typer.Option(help="model factory (package.module:fn) a checkpoint may "
                                                              "name, beyond train.models:*")]
ReportDir = Annotated[Path | None, typer.Option(help="write the report here instead of the artifacts folder")]


def access_from(trust_key, trust_code: bool, allow_factory, report_dir: Path | None):
    from export_kit.folder.access import Access

    return Access(tuple(trust_key or ()), trust_code, tuple(allow_factory or ()), report_dir)


def console():
    from rich.console import Console

    return Console(highlight=False, soft_wrap=True)


#: The library logs plain text (Python API users see no markup); the terminal colours these words.
HIGHLIGHTS = {"FAIL": "bold red", "export failed": "red", "pass": "green", "skip": "yellow", "unavailable": "yellow"}


def log(message: str) -> None:
    from rich.text import Text

    text = Text(terminal(message))  # names and reasons come from files: never act on their control characters
    for word, style in HIGHLIGHTS.items():
        text.highlight_words([word], style)
    console().print(text)


def handled(func):
    """Turn user errors into one line on stderr and their documented exit code."""

    @functools.wraps(func)
    def wrapper(*args, **kwargs):
        try:
            refuse_nul(kwargs)
            return func(*args, **kwargs)
        except errors.ExportKitError as exc:
            if STATE["debug"]:
                raise
            typer.echo("error: " + terminal(exc).replace("\n", " "), err=True)  # one line, whatever it quotes
            raise typer.Exit(exc.exit_code) from None
        except KeyboardInterrupt:
            typer.echo("interrupted; the folder has no manifest.json, so it does not count as built", err=True)
            raise typer.Exit(errors.EXIT_INTERRUPTED) from None

    return wrapper


def refuse_nul(values: dict) -> None:
    """A NUL byte cannot be in a path or name; say so before the operating system raises ValueError."""
    for name, value in values.items():
        items = value if isinstance(value, (list, tuple)) else [value]
        if any("\0" in str(v) for v in items if isinstance(v, (str, Path))):
            raise errors.UsageError(f"--{name.replace('_', '-')} contains a NUL byte")


def parse_batches(text: str) -> list[int]:
    from export_kit.safeio.limits import check_batch

    try:
        values = [int(v) for v in text.split(",")]
    except ValueError:
        raise errors.UsageError(f"--batch takes comma-separated positive integers, got {text!r}") from None
    if not values or any(v <= 0 for v in values):
        raise errors.UsageError(f"--batch takes comma-separated positive integers, got {text!r}")
    for v in values:
        check_batch(v)
    return values


def parse_counts(text: str, option: str, most: int) -> tuple[int, ...]:
    """``"1,2,3"`` -> ``(1, 2, 3)``: distinct positive integers up to ``most``, or a one-line usage error."""
    try:
        values = tuple(int(v) for v in text.split(","))
    except ValueError:
        values = ()
    if not values or any(not 0 < v <= most for v in values) or len(set(values)) != len(values):
        raise errors.UsageError(f"{option} takes distinct comma-separated integers from 1 to {most}, got {text!r}")
    return values


def finish(report, sections: tuple[str, ...], report_dir: Path | None = None) -> None:
    """Exit with the outcome of this command's own sections: 1 on a failure, 5 when rows were not run for
    want of trust, 4 when a remote target named with --target could not be reached, else 0."""
    failures, untrusted = report.failures(sections), report.untrusted(sections)
    unreached = report.unreached() if "verify" in sections else []
    for line in unreached:
        typer.echo(terminal(f"NOT REACHED target {line}"), err=True)
    for line in failures:
        typer.echo(terminal(f"FAILED {line}"), err=True)
    for line in untrusted:
        typer.echo(terminal(f"NOT RUN {line}: untrusted code (--trust-key KEY.pub or --trust-code)"), err=True)
    from export_kit.report.verdict import overall, verdict_lines

    log(f"verdict: {overall(report)}")
    for line in verdict_lines(report):
        log(f"  {line}")
    log(f"report: {Path(report_dir or report.folder) / 'report.md'}")
    if failures:
        raise typer.Exit(errors.EXIT_CHECK_FAILED)
    if untrusted:
        raise typer.Exit(errors.EXIT_UNTRUSTED)
    if unreached:
        raise typer.Exit(errors.EXIT_UNAVAILABLE)
