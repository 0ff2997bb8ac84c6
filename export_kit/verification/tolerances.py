"""Tolerance overrides from a TOML file, per precision class, per artifact name, and per output of either.

    [int8]                      # every int8 artifact
    min_top1_agreement = 0.95
    [onnx]                      # one artifact, by its manifest name; wins over its precision's table
    max_abs = 1e-5
    [fp16.outputs.boxes]        # one output of every fp16 artifact; wins over [fp16] for that output
    max_abs = 0.05

Keys are the fields of :class:`export_kit.folder.precision.Tolerance`, tables are precision classes or
artifact names of the folder (their ``outputs`` sub-tables name outputs of the model), and values are finite
(fractions at most 1); anything else is refused, so a typo cannot silently leave a default in place. Outputs
differ in scale (logits, box coordinates in pixels, probabilities), which is why one bound per artifact is not
enough.
"""

from __future__ import annotations

import math
import tomllib
from pathlib import Path
from typing import Any

from export_kit.errors import UsageError
from export_kit.folder.manifest import Artifact, Manifest
from export_kit.folder.precision import DEFAULT_TOLERANCES, Tolerance, default_tolerance
from export_kit.model.io import ModelIO
from export_kit.safeio.limits import SMALL_FILE_BYTES, read_regular

FIELDS = set(Tolerance.__dataclass_fields__)
FRACTIONS = ("min_top1_agreement", "min_cosine")
OUTPUTS = "outputs"
#: section -> {field: value, "outputs": {output name: {field: value}}}
Overrides = dict[str, dict[str, Any]]


def load_tolerances(path: Path) -> Overrides:
    if not Path(path).exists():
        raise UsageError(f"--tolerances {path} does not exist")
    try:
        data = tomllib.loads(read_regular(Path(path), SMALL_FILE_BYTES, UsageError, "--tolerances").decode("utf-8"))
    except (ValueError, UnicodeDecodeError) as exc:  # TOML errors, and integers past Python's 4,300 digits
        raise UsageError(f"--tolerances {path} is not valid TOML: {exc}") from None
    out: Overrides = {}
    for section, values in data.items():
        if not isinstance(values, dict):
            raise UsageError(f"--tolerances: [{section}] must be a table of {', '.join(sorted(FIELDS))}")
        per_output = values.get(OUTPUTS, {})
        if not isinstance(per_output, dict) or not all(isinstance(v, dict) for v in per_output.values()):
            raise UsageError(f"--tolerances: [{section}.{OUTPUTS}] must hold one table per output, e.g. "
                             f"[{section}.{OUTPUTS}.logits]")
        out[section] = _bounds(section, {k: v for k, v in values.items() if k != OUTPUTS})
        if per_output:
            out[section][OUTPUTS] = {name: _bounds(f"{section}.{OUTPUTS}.{name}", table)
                                     for name, table in per_output.items()}
    return out


def _bounds(section: str, values: dict) -> dict[str, float]:
    """One table's values, each a known field with a finite non-negative number (fractions at most 1)."""
    unknown = set(values) - FIELDS
    if unknown:
        raise UsageError(f"--tolerances: [{section}] has unknown key(s) {sorted(unknown)}; "
                         f"known: {', '.join(sorted(FIELDS))} (and {OUTPUTS} sub-tables)")
    numbers = {k: _number(v) for k, v in values.items()}
    bad = [k for k, v in numbers.items() if v is None]
    if bad:
        raise UsageError(f"--tolerances: [{section}] {bad[0]} must be a finite non-negative number")
    above = [k for k in FRACTIONS if numbers.get(k, 0) > 1]
    if above:
        raise UsageError(f"--tolerances: [{section}] {above[0]} is a fraction: 0 to 1")
    return numbers


def _number(value: object) -> float | None:
    """``value`` as a finite non-negative float, or None (an integer of 400 digits overflows a float: None)."""
    if not isinstance(value, (int, float)) or isinstance(value, bool):
        return None
    try:
        number = float(value)
    except OverflowError:
        return None
    return number if math.isfinite(number) and number >= 0 else None


def check_tolerance_names(overrides: Overrides | None, manifest: Manifest) -> None:
    """Every table must name a precision class or an artifact of this folder, and every ``outputs`` sub-table an
    output of its model: ``[onxx]`` or ``[onnx.outputs.logit]`` is a typo, not a no-op."""
    known = {*DEFAULT_TOLERANCES, *(a.name for a in manifest.artifacts)}
    unknown = sorted(set(overrides or {}) - known)
    if unknown:
        raise UsageError(f"--tolerances: table [{unknown[0]}] names no precision class or artifact of this folder "
                         f"(known: {', '.join(sorted(known))})")
    outputs = [o.name for o in manifest.model_io.outputs]
    for section, values in (overrides or {}).items():
        stray = sorted(set(values.get(OUTPUTS, {})) - set(outputs))
        if stray:
            raise UsageError(f"--tolerances: table [{section}.{OUTPUTS}.{stray[0]}] names no output of this "
                             f"model (outputs: {', '.join(outputs)})")


def tolerance_for(artifact: Artifact, overrides: Overrides | None, output: str | None = None) -> Tolerance:
    """Default of the artifact's precision class, then the precision's table, then the artifact's own; for one
    ``output``, then the precision's and the artifact's tables for that output."""
    tol = default_tolerance(artifact.precision)
    tables = [(overrides or {}).get(key, {}) for key in (artifact.precision, artifact.name)]
    for table in tables:
        tol = tol.with_overrides(**{k: v for k, v in table.items() if k != OUTPUTS})
    if output is not None:
        for table in tables:
            tol = tol.with_overrides(**table.get(OUTPUTS, {}).get(output, {}))
    return tol


def classifier_tolerance(artifact: Artifact, overrides: Overrides | None, io: ModelIO) -> Tolerance:
    """The classifier output's tolerance (the first output's for a model without one): what accuracy is judged by
    and a verify row reports as its own."""
    return tolerance_for(artifact, overrides, io.outputs[io.headline].name)
