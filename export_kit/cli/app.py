"""The ``exportkit`` command: thin typer commands, each one call into :mod:`export_kit.api`.

Exit codes (see README, "Errors"): 0 ok, 1 a check failed, 2 bad command-line value, 3 bad input file or
folder, 4 runtime or device not available, 5 rows not run because the folder's code is not trusted,
130 interrupted. User errors print one line; ``--debug`` shows the
traceback. Any other exception is a bug and keeps its traceback.
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Annotated

import typer

from export_kit import errors
from export_kit.cli.explain import explain as explain_command
from export_kit.cli.support import (
    STATE,
    AllowFactory,
    BenchProcesses,
    DataDir,
    Folder,
    ReportDir,
    TrustCode,
    TrustKeys,
    access_from,
    console,
    finish,
    handled,
    log,
    parse_batches,
    parse_counts,
)
from export_kit.cli.train import train as train_command
from export_kit.safeio.limits import MAX_GOLDEN

app = typer.Typer(add_completion=False, no_args_is_help=True, pretty_exceptions_enable=False,
                  context_settings={"help_option_names": ["-h", "--help"]},
                  help="Export a PyTorch model to twelve deployable formats (ONNX, TorchScript, int8, ExecuTorch, "
                       "LiteRT, OpenVINO, ...), prove each computes what the model computes, and benchmark them.")


def _print_version(value: bool) -> None:
    if value:
        from export_kit import __version__

        typer.echo(f"exportkit {__version__}")
        raise typer.Exit()

@app.callback()
def _root(debug: Annotated[bool, typer.Option(help="show tracebacks for user errors")] = False,
          version: Annotated[bool, typer.Option("--version", callback=_print_version, is_eager=True,
                                                help="print exportkit's version and exit")] = False) -> None:
    STATE["debug"] = debug


Opt = typer.Option


app.command(name="train")(handled(train_command))


@app.command()
@handled
def build(
    formats: Annotated[str | None, typer.Option(help="comma-separated formats; default onnx,torchscript,int8, "
                                                     "plus int8-static when training images are at hand")] = None,
    out: Annotated[Path, typer.Option(help="artifacts folder")] = Path("artifacts"),
    checkpoint: Annotated[Path | None, typer.Option(help="exportkit checkpoint (skips training); with --model, "
                                                         "weights for it")] = None,
    model: Annotated[str | None, typer.Option(help="your own model: package.module:factory")] = None,
    allow_factory: AllowFactory = None,
    input_shape: Annotated[str | None, typer.Option(help="with --model, an image model: CxHxW, C 3 (RGB) or 1 "
                                                         "(grayscale) [default: 3x224x224]")] = None,
    inputs: Annotated[list[str] | None, typer.Option("--input", help="with --model, a model that takes no images: "
                                                    "NAME:DTYPE:batchxD1x...[:LOW..HIGH], once per input in "
                                                    "forward's order, e.g. ids:int64:batchx128:0..1000")] = None,
    classifier: Annotated[str | None, typer.Option(help="with --model: the output holding the class logits, or "
                                                        "'none' to verify every output by parity alone "
                                                        "(segmentation, detection heads, embeddings) [default: "
                                                        "an output named logits, else the first if it is "
                                                        "(batch, classes), else none]")] = None,
    resize: Annotated[int | None, typer.Option(min=1, help="with --model: photos of any size get their shorter "
                                                           "side resized to N pixels, then a centre crop to "
                                                           "--input-shape's HxW")] = None,
    interpolation: Annotated[str, typer.Option(help="with --resize: the filter, bilinear or bicubic (float32, "
                                                    "as apps reproduce it), nearest or lanczos (PIL)")] = "bilinear",
    antialias: Annotated[bool, typer.Option(help="with --resize: widen the filter when shrinking, as torchvision "
                                                 "does")] = True,
    bgr: Annotated[bool, typer.Option(help="with --model: the model takes BGR, channels reversed as OpenCV "
                                           "decodes; --mean/--std are then B,G,R")] = False,
    layout: Annotated[str, typer.Option(help="with --model: the image input's axis order, NCHW or NHWC "
                                             "(channels last); --input-shape stays CxHxW")] = "NCHW",
    classes: Annotated[Path | None, typer.Option(help="with --model: class names, one per line")] = None,
    mean: Annotated[str | None, typer.Option(help="with --model: mean of pixels scaled to [0,1], one per channel "
                                                  "(R,G,B) or one for all [default: 0]")] = None,
    std: Annotated[str | None, typer.Option(help="with --model: std, one per channel or one for all "
                                                 "[default: 1]")] = None,
    data_dir: DataDir = None,
    dataset: Annotated[str | None, typer.Option(help="cifar10 or synthetic; default cifar10, none with "
                                                     "--model")] = None,
    arch: Annotated[str, typer.Option(help="architecture when training: seed or resnet")] = "seed",
    epochs: Annotated[int | None, typer.Option(min=1, help="epochs when training [default: per arch]")] = None,
    batch: Annotated[str, typer.Option(help="bench batch sizes")] = "1,32",
    bench: Annotated[bool, typer.Option(help="benchmark after verifying")] = True,
    bench_processes: BenchProcesses = 7,
    golden: Annotated[int, typer.Option(min=8, max=MAX_GOLDEN, help="golden test images stored for parity")] = 250,
    int8_keep_float: Annotated[str | None, typer.Option(help="also write int8-static-keepN for each N given (e.g. "
                                                             "1,2,3): static int8 with the N layers that add "
                                                             "the most error left in float")] = None,
) -> None:
    """Train (unless --checkpoint or --model), export each format, verify and benchmark: the whole pipeline."""
    from export_kit.benchmark.sampling import SamplingConfig
    from export_kit.pipeline import ModelChoice, build_pipeline

    choice = ModelChoice(model, checkpoint, input_shape, classes, mean, std, arch, epochs, tuple(allow_factory or ()),
                         tuple(inputs or ()), classifier, resize, interpolation, bgr, antialias, layout.upper())
    batches = parse_batches(batch)
    report = build_pipeline(choice, out=out, formats=formats, dataset=dataset, data_dir=data_dir,
                            bench_batches=batches if bench else (), golden_count=golden,
                            bench_config=SamplingConfig(processes=bench_processes),
                            format_options={"int8-static": {"keep_float": parse_counts(
                                int8_keep_float, "--int8-keep-float", 64)}} if int8_keep_float else None, log=log)
    finish(report, ("export", "verify", "bench"))


VerifyDataset = Annotated[str | None, typer.Option(help="dataset for accuracy; default: none unless --data-dir "
                                                        "or $EXPORTKIT_DATA")]


@app.command()
@handled
def verify(
    artifacts: Folder = Path("artifacts"),
    data_dir: DataDir = None,
    dataset: VerifyDataset = None,
    device: Annotated[str | None, typer.Option(help="only this device (cpu, cuda, tensorrt)")] = None,
    tolerances: Annotated[Path | None, typer.Option(help="TOML overrides per precision or artifact")] = None,
    junit: Annotated[Path | None, typer.Option(help="also write JUnit XML here")] = None,
    trust_key: TrustKeys = None,
    trust_code: TrustCode = False,
    allow_factory: AllowFactory = None,
    report_dir: ReportDir = None,
    explain: Annotated[bool, typer.Option(help="localize each failed parity or accuracy row layer by layer "
                                               "(exportkit explain), within two minutes in all")] = True,
    target: Annotated[list[str] | None, typer.Option(
        help="also verify on NAME=URL (repeatable): ssh://user@host:port/dir through your ssh client (user, port "
             "and dir optional), or python:/path/to/python; 'local' keeps this machine's rows when targets are "
             "named")] = None,
    targets: Annotated[Path | None, typer.Option(help="a fleet: TOML with a [targets] table of NAME = \"URL\" "
                                                      "lines, verified in parallel")] = None,
    target_timeout: Annotated[float, typer.Option(min=1, max=3600, help="seconds each step on a target may "
                                                                       "take before its row fails")] = 120.0,
) -> None:
    """Re-check a built folder: integrity, load, parity on golden vectors, and accuracy when data is given; with
    --target, the same checks on each target's own runtime."""
    from export_kit import api
    from export_kit.pipeline import test_split_for
    from export_kit.targets.spec import load_fleet
    from export_kit.verification.tolerances import load_tolerances

    overrides = load_tolerances(tolerances) if tolerances else None
    target = [*(target or []), *(load_fleet(targets) if targets else [])]
    test, optional = test_split_for(artifacts, dataset, data_dir, log)
    report = api.verify(artifacts, test, tolerances=overrides, devices=(device,) if device else None,
                        access=access_from(trust_key, trust_code, allow_factory, report_dir),
                        data_optional=optional, explain=explain, targets=target,
                        target_timeout=target_timeout, log=log)
    if junit:
        from export_kit.report.junit import write_junit

        write_junit(report.verify_rows(), junit)
    finish(report, ("verify",), report_dir)


@app.command()
@handled
def selftest(
    artifacts: Folder = Path("artifacts"),
    data_dir: DataDir = None,
    dataset: VerifyDataset = None,
    trust_key: TrustKeys = None,
    trust_code: TrustCode = False,
    allow_factory: AllowFactory = None,
) -> None:
    """Plant known faults in copies of a built folder and show that verify catches every one."""
    from rich.table import Table

    from export_kit import api
    from export_kit.faults.plant import selftest_failure
    from export_kit.pipeline import test_split_for

    test, optional = test_split_for(artifacts, dataset, data_dir, log)
    results = api.selftest(artifacts, test, access=access_from(trust_key, trust_code, allow_factory, None),
                           data_optional=optional, log=log)
    table = Table("fault", "artifact", "must fail", "failed checks", "result", title="planted faults")
    for r in results:
        colour = {"passed": "green", "skipped": "yellow"}.get(r.status, "red")
        table.add_row(r.fault, r.artifact, r.expected_check, ", ".join(r.failed_checks) or "-",
                      f"[{colour}]{r.outcome}[/] {r.detail}")
    console().print(table)
    why = selftest_failure(results)
    if why:
        typer.echo(f"FAILED {why}", err=True)
        raise typer.Exit(errors.EXIT_CHECK_FAILED)


@app.command()
@handled
def bench(
    artifacts: Folder = Path("artifacts"),
    batch: Annotated[str, typer.Option(help="comma-separated batch sizes")] = "1,32",
    device: Annotated[str | None, typer.Option(help="only this device (cpu, cuda, tensorrt)")] = None,
    baseline: Annotated[Path | None, typer.Option(help="fail on latency regressions against this file")] = None,
    max_regression: Annotated[str, typer.Option(help="allowed slowdown beyond the measured noise")] = "10%",
    save_baseline: Annotated[Path | None, typer.Option(help="write this run as a baseline")] = None,
    against: Annotated[Path | None, typer.Option(help="another build of the same model, timed in the same worker "
                                                      "processes and compared row by row (A/B)")] = None,
    processes: BenchProcesses = 7,
    quick: Annotated[bool, typer.Option(help="3 worker processes and fewer slices: faster, wider intervals")] = False,
    tune: Annotated[bool, typer.Option(help="time each runtime's candidate settings (threads, spinning, IO "
                                            "binding; the defaults always among them) and record the fastest "
                                            "in the manifest")] = False,
    allow_env_mismatch: Annotated[bool, typer.Option(help="compare even if the environment differs")] = False,
    trust_key: TrustKeys = None,
    trust_code: TrustCode = False,
    allow_factory: AllowFactory = None,
    report_dir: ReportDir = None,
) -> None:
    """Time every artifact on every available runtime and device in fresh worker processes; optionally gate on a
    saved baseline or on another build timed in the same run."""
    from export_kit import api
    from export_kit.benchmark.baseline import parse_fraction
    from export_kit.benchmark.sampling import QUICK, SamplingConfig

    if baseline and against:
        raise errors.UsageError("give --baseline or --against, not both")
    gate = api.Gate(baseline, parse_fraction(max_regression), allow_env_mismatch, save_baseline, against)
    config = QUICK if quick else SamplingConfig(processes=processes)
    report = api.bench(artifacts, parse_batches(batch), devices=(device,) if device else None, gate=gate,
                       config=config, access=access_from(trust_key, trust_code, allow_factory, report_dir), tune=tune,
                       log=log)
    finish(report, ("bench",), report_dir)


@app.command()
@handled
def env(freeze: Annotated[bool, Opt(help="print name==version pins of exportkit's dependencies as installed, "
                                         "for pip install -c")] = False) -> None:
    """What this machine is (the fingerprint recorded with every latency), or with --freeze its pinned versions."""
    import json

    from export_kit.benchmark.environment import fingerprint, frozen_requirements

    typer.echo("\n".join(frozen_requirements()) if freeze else json.dumps(fingerprint(), indent=2))


app.command()(handled(explain_command))


def main() -> None:
    sys.exit(app())
