"""Build the networks of the papers from a ModelSpec: the table of builders (one per model kind
of `pyanode._names`), parameter counting and width matching, and the weights as one vector."""

from __future__ import annotations

import math
from collections.abc import Callable

import numpy as np
import torch
from torch import nn

from pyanode._errors import SpecError
from pyanode._names import MODEL_KINDS
from pyanode.specs import ModelSpec, SolverSpec
from pyanode.torch._adaptive import adaptive_depth
from pyanode.torch._depth_variant import depth_variant
from pyanode.torch._fields import MLPField
from pyanode.torch._networks import Augment, NeuralODE, ODEBlock, ResNet

Builder = Callable[[ModelSpec, SolverSpec, int, int], nn.Module]


def _field(spec: ModelSpec, dim: int, control_dim: int = 0) -> MLPField:
    return MLPField(
        dim,
        spec.hidden,
        act=spec.activation,
        time_dependent=spec.time_dependent,
        control_dim=control_dim,
    )


def _node(spec: ModelSpec, solver: SolverSpec, in_dim: int, out_dim: int) -> nn.Module:
    dim = in_dim + spec.augment_dim
    input_map = Augment(spec.augment_dim) if spec.augment_dim else nn.Identity()
    return NeuralODE(input_map, ODEBlock(_field(spec, dim), solver), nn.Linear(dim, out_dim))


def _il_node(spec: ModelSpec, solver: SolverSpec, in_dim: int, out_dim: int) -> nn.Module:
    dim = in_dim + spec.augment_dim
    block = ODEBlock(_field(spec, dim), solver)
    return NeuralODE(nn.Linear(in_dim, dim), block, nn.Linear(dim, out_dim))


def _data_controlled(spec: ModelSpec, solver: SolverSpec, in_dim: int, out_dim: int) -> nn.Module:
    dim = in_dim + spec.augment_dim
    input_map = Augment(spec.augment_dim) if spec.augment_dim else nn.Identity()
    block = ODEBlock(_field(spec, dim, control_dim=in_dim), solver, control=True)
    return NeuralODE(input_map, block, nn.Linear(dim, out_dim))


def _resnet(spec: ModelSpec, solver: SolverSpec, in_dim: int, out_dim: int) -> nn.Module:
    return ResNet(in_dim, out_dim, spec.hidden, spec.depth, spec.activation, spec.augment_dim)


_BUILDERS: dict[str, Builder] = {
    "resnet": _resnet,
    "node": _node,
    "anode": _node,
    "il-node": _il_node,
    "data-controlled": _data_controlled,
    "chebyshev": depth_variant,
    "fourier": depth_variant,
    "stacked": depth_variant,
    "adaptive-depth": adaptive_depth,
}
# model kind -> builder, in the order of the name table (a kind without a builder fails here)
MODELS: dict[str, Builder] = {kind: _BUILDERS[kind] for kind in MODEL_KINDS}


def build_model(
    spec: ModelSpec,
    in_dim: int,
    out_dim: int,
    solver: SolverSpec | None = None,
    *,
    seed: int | None = None,
) -> nn.Module:
    """The torch module for `spec` mapping (B, in_dim) inputs to (B, out_dim) outputs.

    Arguments:
        spec: the model spec.
        in_dim, out_dim: input features and outputs (classes or regression targets).
        solver: the ODE solver spec (default `SolverSpec()`); ignored by `resnet`.
        seed: seeds the weight initialisation (without touching the global RNG).

    Raises:
        SpecError: for a kind with no builder.
    """
    if spec.kind not in MODELS:
        raise SpecError(
            f"model.kind={spec.kind!r} has no torch builder; available: {', '.join(sorted(MODELS))}"
        )
    if seed is None:
        return MODELS[spec.kind](spec, solver or SolverSpec(), in_dim, out_dim)
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        return MODELS[spec.kind](spec, solver or SolverSpec(), in_dim, out_dim)


def count_parameters(spec: ModelSpec, in_dim: int, out_dim: int) -> int:
    """Number of trainable parameters of the model `spec` builds."""
    model = build_model(spec, in_dim, out_dim, seed=0)
    return sum(p.numel() for p in model.parameters() if p.requires_grad)


def match_width(
    spec: ModelSpec,
    in_dim: int,
    out_dim: int,
    budget: int,
    tolerance: float = 0.05,
    *,
    max_width: int = 4096,
) -> tuple[int, int]:
    """The hidden width whose model has the parameter count closest to `budget`: "we choose the
    hidden layer's width so that the number of parameters is approximately equal between models"
    ("Overcoming Limitations of Neural ODEs", §4; Table 1: about 1.3k each).

    The count grows with the width, so the search doubles and bisects for the first width at or
    above the budget and keeps it or the width below, whichever is closer (the smaller on a tie).

    Arguments:
        spec: the model; every field but `hidden` is kept.
        in_dim, out_dim: input features and outputs of the model.
        budget: the target number of trainable parameters (> 0).
        tolerance: the accepted relative distance |n - budget| / budget, in (0, 1).
        max_width: the largest width tried.

    Returns:
        `(width, n_parameters)`.

    Raises:
        SpecError: for a bad budget or tolerance, or when no width lands within the tolerance
            (the message gives the two nearest widths and their counts).
    """
    if isinstance(budget, bool) or not isinstance(budget, int) or budget <= 0:
        raise SpecError(f"budget must be an integer > 0, got {budget!r}")
    if not (isinstance(tolerance, (int, float)) and 0 < tolerance < 1):
        raise SpecError(f"tolerance must be a number in (0, 1), got {tolerance!r}")

    def count(width: int) -> int:
        return count_parameters(spec.replace(hidden=width), in_dim, out_dim)

    # the first width whose count is >= budget: double until past it (building a model of the
    # largest width would be slow), then bisect
    lo, hi = 1, 1
    while hi < max_width and count(hi) < budget:
        lo, hi = hi + 1, min(2 * hi, max_width)
    while lo < hi:
        mid = (lo + hi) // 2
        if count(mid) >= budget:
            hi = mid
        else:
            lo = mid + 1
    candidates = [(w, count(w)) for w in (lo - 1, lo) if w >= 1]
    width, n = min(candidates, key=lambda wn: (abs(wn[1] - budget), wn[0]))
    if abs(n - budget) > tolerance * budget:
        near = ", ".join(
            f"width {w} gives {c} ({(c - budget) / budget:+.1%})" for w, c in candidates
        )
        raise SpecError(
            f"no hidden width puts model.kind={spec.kind!r} within {tolerance:.0%} of {budget} "
            f"parameters ({math.ceil((1 - tolerance) * budget)}..."
            f"{math.floor((1 + tolerance) * budget)}): {near}; change the budget, the tolerance "
            "or the other fields of the spec (degree, n_pieces, augment_dim, depth)"
        )
    return width, n


def flat_parameters(model: nn.Module) -> np.ndarray:
    """All parameters as one float32 vector in the documented order (docs/architecture.md):
    modules in forward (registration) order, each weight row-major, then its bias."""
    return np.concatenate(
        [p.detach().cpu().reshape(-1).numpy().astype(np.float32) for p in model.parameters()]
    )


def set_flat_parameters(model: nn.Module, vector: np.ndarray) -> None:
    """Load a vector written by `flat_parameters` (or by the Julia backend) into `model`."""
    vector = np.asarray(vector)
    n = sum(p.numel() for p in model.parameters())
    if vector.ndim != 1 or vector.shape[0] != n:
        raise ValueError(f"parameter vector must have shape ({n},), got {vector.shape}")
    offset = 0
    with torch.no_grad():
        for p in model.parameters():
            chunk = torch.from_numpy(np.ascontiguousarray(vector[offset : offset + p.numel()]))
            p.copy_(chunk.reshape(p.shape))
            offset += p.numel()
