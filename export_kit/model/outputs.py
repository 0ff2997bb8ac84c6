"""What a model returns: its outputs named (one tensor, a tuple, or a dict), at most one of them the classifier
whose logits accuracy is judged on, chosen by the user or guessed (and the guess said), and the reference's top-1
read from it. A model without one (segmentation, detection heads, embeddings) is verified by parity alone.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np

from export_kit.errors import UsageError

if TYPE_CHECKING:
    from export_kit.model.io import ModelIO
    from export_kit.model.preprocessing import Preprocessing

#: The batch axis's name in a shape.
BATCH = "batch"

#: ``--classifier none``: a model without class logits, verified by parity on every output.
NO_CLASSIFIER = "none"


@dataclass(frozen=True)
class OutputSpec:
    """One output: its per-sample shape and whether it is the classifier's logits (at most one output is)."""

    name: str
    shape: tuple[int, ...]
    classifier: bool = False

    def to_dict(self) -> dict:
        return {"name": self.name, "shape": [BATCH, *self.shape], "dtype": "float32", "classifier": self.classifier}

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> OutputSpec:
        return cls(str(data["name"]), tuple(int(d) for d in data["shape"][1:]), bool(data.get("classifier")))


def output_specs(out: Any, classifier: str | None = None) -> tuple[OutputSpec, ...]:
    """Name the outputs a forward returned (one tensor, a tuple, or a dict) and mark the classifier: ``classifier``
    when given (:data:`NO_CLASSIFIER` for none), else :func:`guess_classifier`'s choice. The classifier must be
    ``(batch, classes)`` logits."""
    import torch

    if isinstance(out, torch.Tensor):
        named = {"logits": out}
    elif isinstance(out, Mapping):
        named = dict(out)
    elif isinstance(out, (tuple, list)) and out:
        named = {f"output{i}": t for i, t in enumerate(out)}
    else:
        raise UsageError(f"the model must return a tensor, a tuple or a dict of tensors; got {type(out).__name__}")
    for name, tensor in named.items():
        if not isinstance(tensor, torch.Tensor) or tensor.ndim < 1:
            raise UsageError(f"output {name!r} is {type(tensor).__name__}, not a tensor with a batch axis")
    shapes = {str(n): tuple(t.shape) for n, t in named.items()}
    chosen = guess_classifier(shapes) if classifier is None else None if classifier == NO_CLASSIFIER else classifier
    if chosen is not None and chosen not in shapes:
        raise UsageError(f"--classifier {chosen!r} is not an output; the model returns {list(shapes)} (or give "
                         f"--classifier {NO_CLASSIFIER} to verify every output by parity alone)")
    if chosen is not None and len(shapes[chosen]) != 2:
        raise UsageError(f"the classifier output {chosen!r} must be (batch, classes) logits; got shape "
                         f"{shapes[chosen]}: name the logits with --classifier NAME, or give --classifier "
                         f"{NO_CLASSIFIER} for a model without one")
    return tuple(OutputSpec(n, shape[1:], n == chosen) for n, shape in shapes.items())


def guess_classifier(shapes: Mapping[str, tuple[int, ...]]) -> str | None:
    """The classifier when none is named: an output called ``logits``, else the first output if it is
    ``(batch, classes)``, else none (parity alone). :func:`classifier_choice` says which, for the user to see."""
    if len(shapes.get("logits", ())) == 2:
        return "logits"
    first = next(iter(shapes))
    return first if len(shapes[first]) == 2 else None


def classifier_choice(io: ModelIO, given: str | None) -> str | None:
    """A line saying which output was taken as the classifier when the user named none, or None."""
    if given is not None or (len(io.outputs) == 1 and io.classifier == 0):
        return None
    if io.classifier is None:
        return (f"no (batch, classes) output among {[o.name for o in io.outputs]}: every output is verified by "
                "parity alone and accuracy is skipped (--classifier NAME chooses one)")
    return (f"classifier: output {io.outputs[io.classifier].name!r} of {[o.name for o in io.outputs]} (guessed; "
            f"--classifier NAME or --classifier {NO_CLASSIFIER} to choose)")


def flat_outputs(out: Any) -> list:
    """A forward's result as a list in output order: a tensor, a tuple/list, or a dict (in its key order)."""
    if isinstance(out, Mapping):
        return list(out.values())
    if isinstance(out, (tuple, list)):
        return list(out)
    return [out]


def classifier_logits(out: Any, classifier: int):
    """The classifier's logits from a forward's result."""
    return flat_outputs(out)[classifier]


def reference_top1(model, prep: Preprocessing, split, classifier: int, chunk: int = 256) -> np.ndarray:
    """The eager model's top-1 on a :class:`~export_kit.model.datasets.Split`, ``chunk`` images at a time: 256 photos
    of 224x224 are 150 MB as float32 inputs, and a split of any size is never whole in memory."""
    import torch

    found = [np.empty(0, np.int64)]
    with torch.inference_mode():
        for i in range(0, len(split), chunk):
            batch = torch.from_numpy(prep.apply(split.rows(i, i + chunk)))
            found.append(classifier_logits(model(batch), classifier).argmax(1).numpy().astype(np.int64))
    return np.concatenate(found)
