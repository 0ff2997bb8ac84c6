"""Dynamic axes beyond the batch: a sequence length, an audio clip's sample count, a detector's image size.

An input names such an axis in its shape (``ids:int64:batchxseq=128:0..1000``: axis ``seq``, traced and stored in
the golden vectors at 128). The same name on several inputs is one axis (token ids and their attention mask share
``seq``). Every format that can is exported with the axis dynamic from a quarter to four times its example size
(:meth:`Axis.bounds`), and verify checks parity at a spread of sizes in that range (:meth:`Axis.spread`): a graph
exported right at 128 can be wrong at 61 (a length baked into a reshape by tracing, a positional table sliced to a
constant), and only sizes other than the traced one show it.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

#: Exported range around the example size: ``[max(2, size // 4), 4 * size]`` (torch.export specializes sizes 0
#: and 1, so a dynamic axis starts at 2).
SHRINK, GROW = 4, 4
#: Named axes a model may have: each adds up to six stored golden sets.
MAX_AXES = 10


@dataclass(frozen=True)
class Axis:
    name: str
    example: int

    @property
    def bounds(self) -> tuple[int, int]:
        return max(2, self.example // SHRINK), self.example * GROW

    def spread(self) -> tuple[int, ...]:
        """Sizes other than the example that parity checks: the smallest, its odd or even neighbour, a prime near
        half the example, the example's neighbours, and one near twice it (kernels switch strategy at sizes like
        those); fixed, so every run checks the same."""
        low, high = self.bounds
        candidates = {low, low + 1, next_prime(self.example // 2), self.example - 1, self.example + 1,
                      2 * self.example - 1}
        return tuple(sorted(s for s in candidates if low <= s <= high and s != self.example))


def next_prime(n: int) -> int:
    """The smallest prime at or above ``n`` (at least 2)."""
    n = max(2, n)
    while any(n % d == 0 for d in range(2, int(n ** 0.5) + 1)):
        n += 1
    return n


def parse_dim(text: str) -> tuple[int, str | None]:
    """One per-sample dimension of ``--input``: ``128`` (fixed) or ``seq=128`` (axis ``seq``, example 128)."""
    name, _, size = text.partition("=")
    if not size:
        return int(text), None
    if not name.isidentifier() or name == "batch":
        raise ValueError(f"axis name {name!r} must be a Python identifier other than batch")
    if int(size) < 2:
        raise ValueError(f"axis {name} is traced at {size}; a dynamic axis needs an example size of at least 2 "
                         "(exporters fix sizes 0 and 1)")
    return int(size), name


def collect(shapes: Sequence[tuple[tuple[int, ...], tuple[str | None, ...]]]) -> dict[str, Axis]:
    """Every named axis of the inputs' (example shape, axis names); one name must have one example size."""
    found: dict[str, Axis] = {}
    for shape, names in shapes:
        for size, name in zip(shape, names, strict=True):
            if name is None:
                continue
            if name in found and found[name].example != size:
                raise ValueError(f"axis {name!r} is {found[name].example} in one input and {size} in another; one "
                                 "name is one axis, so give it one size")
            found[name] = Axis(name, size)
    if len(found) > MAX_AXES:
        raise ValueError(f"{len(found)} named axes; exportkit checks at most {MAX_AXES}")
    return found
