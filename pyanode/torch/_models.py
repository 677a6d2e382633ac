"""Build the networks of the papers from a ModelSpec, and move weights in and out as one vector."""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import torch
from torch import nn

from pyanode._errors import SpecError
from pyanode.specs import ModelSpec, SolverSpec
from pyanode.torch._blocks import Augment, ODEBlock
from pyanode.torch._fields import MLPField
from pyanode.torch._resnet import ResNet


class NeuralODE(nn.Module):
    """x -> output_map(ODEBlock(input_map(x), x)): the generalised IVP of Massaroli et al. 2020.

    NODE: input_map = identity; ANODE: input_map = Augment; IL-NODE: input_map = Linear. The block
    receives the raw input x as well, which a data-controlled field uses and others ignore.
    """

    def __init__(self, input_map: nn.Module, block: nn.Module, output_map: nn.Module):
        super().__init__()
        self.input_map = input_map
        self.block = block
        self.output_map = output_map

    def features(self, x: torch.Tensor) -> torch.Tensor:
        """The flow's end state z(T) (the ANODE paper's features)."""
        return self.block(self.input_map(x), x)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.output_map(self.features(x))

    def trajectories(self, x: torch.Tensor, ts: torch.Tensor) -> torch.Tensor:
        """States z(t) at the times `ts` (in [0, t1]), shape (len(ts), B, state dim)."""
        return self.block(self.input_map(x), x, saveat=ts)


Builder = Callable[[ModelSpec, SolverSpec, int, int], nn.Module]
MODELS: dict[str, Builder] = {}


def register(kind: str) -> Callable[[Builder], Builder]:
    """Register the builder of a model kind (one builder per name in `specs.MODEL_KINDS`)."""

    def add(builder: Builder) -> Builder:
        MODELS[kind] = builder
        return builder

    return add


def _field(spec: ModelSpec, dim: int, control_dim: int = 0) -> MLPField:
    return MLPField(
        dim,
        spec.hidden,
        act=spec.activation,
        time_dependent=spec.time_dependent,
        control_dim=control_dim,
    )


@register("node")
@register("anode")
def _node(spec: ModelSpec, solver: SolverSpec, in_dim: int, out_dim: int) -> nn.Module:
    dim = in_dim + spec.augment_dim
    input_map = Augment(spec.augment_dim) if spec.augment_dim else nn.Identity()
    return NeuralODE(input_map, ODEBlock(_field(spec, dim), solver), nn.Linear(dim, out_dim))


@register("il-node")
def _il_node(spec: ModelSpec, solver: SolverSpec, in_dim: int, out_dim: int) -> nn.Module:
    dim = in_dim + spec.augment_dim
    block = ODEBlock(_field(spec, dim), solver)
    return NeuralODE(nn.Linear(in_dim, dim), block, nn.Linear(dim, out_dim))


@register("data-controlled")
def _data_controlled(spec: ModelSpec, solver: SolverSpec, in_dim: int, out_dim: int) -> nn.Module:
    dim = in_dim + spec.augment_dim
    input_map = Augment(spec.augment_dim) if spec.augment_dim else nn.Identity()
    block = ODEBlock(_field(spec, dim, control_dim=in_dim), solver, control=True)
    return NeuralODE(input_map, block, nn.Linear(dim, out_dim))


@register("resnet")
def _resnet(spec: ModelSpec, solver: SolverSpec, in_dim: int, out_dim: int) -> nn.Module:
    return ResNet(in_dim, out_dim, spec.hidden, spec.depth, spec.activation, spec.augment_dim)


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
