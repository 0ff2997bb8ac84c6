"""The eager model's intermediate tensors, named by module path, and where each one lives in its ONNX export.

Forward hooks record every call of every submodule (cloned: an in-place ReLU downstream would otherwise rewrite
the output). torch.onnx's dynamo exporter tags each node with the module scopes it came from, so the nodes of one
call of a module form one run of consecutive nodes in graph order, and the last node of the run writes that
call's output. A module called several times (ResNet's shared ReLU) pairs its k-th run with its k-th call; where
the counts differ, the module is left unpaired rather than guessed.
"""

from __future__ import annotations

import numpy as np

from export_kit.explain.taps import scopes


def module_outputs(model, inputs: list[np.ndarray]) -> tuple[dict[str, list[np.ndarray]], list[np.ndarray]]:
    """Module path -> the output of each call of each submodule that returns one float tensor, and the model's
    own outputs in order (a tuple's, or a dict's values), for one forward pass on ``inputs``."""
    import torch

    from export_kit.runners.torch_runner import full_fp32

    found: dict[str, list[np.ndarray]] = {}

    def hook(path: str):
        def record(_module, _args, output) -> None:
            if isinstance(output, torch.Tensor) and output.is_floating_point():
                found.setdefault(path, []).append(output.detach().to(torch.float64).clone().numpy())
        return record

    handles = [m.register_forward_hook(hook(p)) for p, m in model.named_modules() if p]
    try:
        with torch.inference_mode(), full_fp32():
            out = model(*(torch.from_numpy(np.ascontiguousarray(a)) for a in inputs))
    finally:
        for h in handles:
            h.remove()
    outs = list(out.values()) if isinstance(out, dict) else list(out) if isinstance(out, (tuple, list)) else [out]
    return found, [o.detach().to(torch.float64).numpy() for o in outs]


def onnx_calls(proto) -> dict[str, list[tuple[str, int]]]:
    """Module path -> per call (a run of consecutive nodes in its scope) the tensor that run ends on and the
    module's depth in the scope chain."""
    calls: dict[str, list[tuple[str, int]]] = {}
    previous: set[str] = set()
    for node in proto.graph.node:
        chain = scopes(node)
        if not node.output or not node.output[0]:
            continue
        for depth, path in enumerate(chain):
            if path in previous:
                calls[path][-1] = (node.output[0], depth)
            else:
                calls.setdefault(path, []).append((node.output[0], depth))
        previous = set(chain)
    return calls


def onnx_module_map(proto, counts: dict[str, int] | None = None) -> dict[str, tuple[str, int]]:
    """ONNX tensor -> (module path, call index) whose output it is; the innermost module where several end on
    the same tensor (a Sequential ends where its last child does). With ``counts`` (calls seen in eager), a
    module whose number of runs differs is left out."""
    best: dict[str, tuple[str, int, int]] = {}
    for path, runs in onnx_calls(proto).items():
        if counts is not None and counts.get(path) != len(runs):
            continue
        for call, (tensor, depth) in enumerate(runs):
            if tensor not in best or depth > best[tensor][2]:
                best[tensor] = (path, call, depth)
    return {tensor: (path, call) for tensor, (path, call, _) in best.items()}
