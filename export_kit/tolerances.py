"""Tolerance overrides from a TOML file, per precision class or per artifact name.

    [int8]                      # every int8 artifact
    min_top1_agreement = 0.95
    [onnx]                      # one artifact, by its manifest name; wins over its precision's table
    max_abs = 1e-5

Keys are the fields of :class:`export_kit.compare.Tolerance`, tables are precision classes or artifact names of
the folder, and values are finite (fractions at most 1); anything else is refused, so a typo cannot silently
leave a default in place.
"""

from __future__ import annotations

import math
import tomllib
from pathlib import Path

from export_kit.compare import DEFAULT_TOLERANCES, Tolerance, default_tolerance
from export_kit.errors import UsageError
from export_kit.manifest import Artifact, Manifest

FIELDS = set(Tolerance.__dataclass_fields__)
FRACTIONS = ("min_top1_agreement", "min_cosine")
Overrides = dict[str, dict[str, float]]


def load_tolerances(path: Path) -> Overrides:
    try:
        data = tomllib.loads(Path(path).read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise UsageError(f"--tolerances {path} does not exist") from None
    except OSError as exc:
        raise UsageError(f"--tolerances {path} cannot be read: {exc.strerror}") from None
    except (tomllib.TOMLDecodeError, UnicodeDecodeError) as exc:
        raise UsageError(f"--tolerances {path} is not valid TOML: {exc}") from None
    out: Overrides = {}
    for section, values in data.items():
        if not isinstance(values, dict):
            raise UsageError(f"--tolerances: [{section}] must be a table of {', '.join(sorted(FIELDS))}")
        unknown = set(values) - FIELDS
        if unknown:
            raise UsageError(f"--tolerances: [{section}] has unknown key(s) {sorted(unknown)}; "
                             f"known: {', '.join(sorted(FIELDS))}")
        bad = [k for k, v in values.items() if not isinstance(v, (int, float)) or isinstance(v, bool)
               or not math.isfinite(v) or v < 0]
        if bad:
            raise UsageError(f"--tolerances: [{section}] {bad[0]} must be a finite non-negative number")
        above = [k for k in FRACTIONS if values.get(k, 0) > 1]
        if above:
            raise UsageError(f"--tolerances: [{section}] {above[0]} is a fraction: 0 to 1")
        out[section] = {k: float(v) for k, v in values.items()}
    return out


def check_tolerance_names(overrides: Overrides | None, manifest: Manifest) -> None:
    """Every table must name a precision class or an artifact of this folder: ``[onxx]`` is a typo, not a no-op."""
    known = {*DEFAULT_TOLERANCES, *(a.name for a in manifest.artifacts)}
    unknown = sorted(set(overrides or {}) - known)
    if unknown:
        raise UsageError(f"--tolerances: table [{unknown[0]}] names no precision class or artifact of this folder "
                         f"(known: {', '.join(sorted(known))})")


def tolerance_for(artifact: Artifact, overrides: Overrides | None) -> Tolerance:
    """Default of the artifact's precision class, then the precision's table, then the artifact's own."""
    tol = default_tolerance(artifact.precision)
    for key in (artifact.precision, artifact.name):
        tol = tol.with_overrides(**(overrides or {}).get(key, {}))
    return tol
