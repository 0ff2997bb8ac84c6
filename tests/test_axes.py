"""Dynamic axes besides the batch: the --input syntax, the manifest round trip, the sizes parity checks, and the
runner's shape check, fuzzed where the input space is wide."""

import pytest
from hypothesis import given
from hypothesis import strategies as st

from export_kit.errors import ManifestError, UsageError
from export_kit.model.axes import MAX_AXES, Axis, collect, next_prime
from export_kit.model.io import InputSpec, parse_input, parse_inputs
from export_kit.runners.base import TensorSpec

names = st.sampled_from(["seq", "samples", "index", "x", "len_x2", "T"])
dims = st.lists(st.one_of(st.integers(1, 300), st.tuples(names, st.integers(2, 300))), min_size=1, max_size=3)


@given(dims=dims, dtype=st.sampled_from(["float32", "int64", "bool"]))
def test_a_parsed_input_round_trips_through_the_manifest(dims, dtype):
    layout = "batch" + "".join(f"x{d}" if isinstance(d, int) else f"x{d[0]}={d[1]}" for d in dims)
    named = [d[0] for d in dims if not isinstance(d, int)]
    text = f"v:{dtype}:{layout}" + (":0..50" if dtype == "int64" else "")
    sizes: dict[str, set[int]] = {}
    for d in dims:
        if not isinstance(d, int):
            sizes.setdefault(d[0], set()).add(d[1])
    if any(len(v) > 1 for v in sizes.values()):  # one name is one axis: two sizes for it are refused
        with pytest.raises(UsageError, match="one name is one axis"):
            parse_inputs([text])
        return
    largest = 1
    for d in dims:
        largest *= d if isinstance(d, int) else 4 * d[1]
    if largest > 64 << 20:  # the input at four times each axis would not fit in memory: refused up front
        with pytest.raises(UsageError, match="at its largest"):
            parse_inputs([text])
        return
    (spec,) = parse_inputs([text])
    assert spec.shape == tuple(d if isinstance(d, int) else d[1] for d in dims)
    assert [n for n in spec.axis_names if n] == named
    assert InputSpec.from_dict(spec.to_dict()) == spec
    assert spec.to_dict()["shape"][1:] == [d if isinstance(d, int) else d[0] for d in dims]


@given(text=st.text(alphabet="abqx=:.0123456789-", max_size=30))
def test_fuzzed_input_specs_are_usage_errors_or_specs(text):
    try:
        spec = parse_input("v:float32:" + text)
    except UsageError:
        return
    spec.check()


@given(example=st.integers(2, 20_000))
def test_the_spread_stays_in_the_exported_range_and_skips_the_traced_size(example):
    axis = Axis("seq", example)
    low, high = axis.bounds
    sizes = axis.spread()
    assert sizes and list(sizes) == sorted(set(sizes)) and example not in sizes
    assert all(low <= s <= high for s in sizes) and low >= 2


def test_the_spread_of_a_length_of_32_and_its_primes():
    assert Axis("seq", 32).spread() == (8, 9, 17, 31, 33, 63)
    assert [next_prime(n) for n in (0, 2, 14, 24, 90)] == [2, 2, 17, 29, 97]


def test_the_runner_takes_any_size_on_a_named_axis_and_only_the_declared_size_elsewhere():
    spec = TensorSpec("ids", (32, 4), "int64", ("seq", None))
    assert spec.fits((8, 4)) and spec.fits((63, 4))
    assert not spec.fits((8, 5)) and not spec.fits((8,))
    assert TensorSpec("x", (3, 8, 8)).fits((3, 8, 8)) and not TensorSpec("x", (3, 8, 8)).fits((3, 9, 8))


def test_manifest_inputs_with_named_axes_are_checked():
    good = {"name": "ids", "shape": ["batch", "seq"], "dtype": "int64", "domain": [0, 10],
            "example_shape": ["batch", 32]}
    assert InputSpec.from_dict(good).axis_names == ("seq",)
    with pytest.raises(ManifestError, match="at its largest"):
        InputSpec.from_dict({**good, "example_shape": ["batch", 60_000]})
    with pytest.raises(ValueError, match="at most"):
        collect([(tuple(range(2, MAX_AXES + 3)), tuple(f"a{i}" for i in range(MAX_AXES + 1)))])
