"""Vector fields f(t, z, args) of the ODE blocks."""

from __future__ import annotations

import weakref

import torch
from torch import nn

from pyanode._errors import SpecError
from pyanode.solvers import AbstractFusedField
from pyanode.torch._fused import FUSED_ACTIVATIONS, MLPKernel, MLPWeights

# MLPField -> the views its fused kernels use, rebuilt when the parameters change
_WEIGHTS: weakref.WeakKeyDictionary[nn.Module, MLPWeights] = weakref.WeakKeyDictionary()

ACTIVATION_MODULES: dict[str, type[nn.Module]] = {
    "relu": nn.ReLU,
    "tanh": nn.Tanh,
    "softplus": nn.Softplus,
    "elu": nn.ELU,
    "sigmoid": nn.Sigmoid,
}


def activation(name: str) -> nn.Module:
    """The activation module called `name`; raises SpecError listing the accepted names."""
    try:
        return ACTIVATION_MODULES[name]()
    except KeyError:
        raise SpecError(
            f"activation={name!r} is not known; accepted: {', '.join(ACTIVATION_MODULES)}"
        ) from None


def mlp(n_in: int, hidden: int, n_out: int, act: str) -> nn.Sequential:
    """Linear(n_in, hidden) -> act -> Linear(hidden, hidden) -> act -> Linear(hidden, n_out):
    the two-hidden-layer MLP of Dupont et al.'s fields and ResNet blocks (App. E)."""
    return nn.Sequential(
        nn.Linear(n_in, hidden),
        activation(act),
        nn.Linear(hidden, hidden),
        activation(act),
        nn.Linear(hidden, n_out),
    )


class MLPField(nn.Module, AbstractFusedField):
    """Two-hidden-layer MLP vector field (Dupont et al. 2019, App. E).

    `[z, x, t] -> hidden -> act -> hidden -> act -> dim`, where the input x is present only for a
    data-controlled field (`control_dim > 0`, Massaroli et al. 2020) and t only when
    `time_dependent`. Called as `f(t, z, args)` with `args` the (B, control_dim) input or None.

    With `act` "relu" or "tanh", `solve` evaluates and differentiates the field
    through its fused kernel (`MLPKernel`: a few BLAS calls per evaluation, no autograd graph);
    the weights stay in `net`, so parameters and their flat order are those of the modules.
    """

    def __init__(
        self,
        dim: int,
        hidden: int,
        *,
        act: str = "relu",
        time_dependent: bool = True,
        control_dim: int = 0,
    ):
        super().__init__()
        self.dim = dim
        self.act = act
        self.control_dim = control_dim
        self.time_dependent = time_dependent
        n_in = dim + control_dim + int(time_dependent)
        self.net = mlp(n_in, hidden, dim, act)

    def forward(self, t: torch.Tensor, z: torch.Tensor, args: torch.Tensor | None = None):
        parts = [z]
        if self.control_dim:
            parts.append(args)
        if self.time_dependent:
            parts.append(t.to(z.dtype).expand(z.shape[0], 1))
        return self.net(torch.cat(parts, dim=1) if len(parts) > 1 else z)

    def fused_kernel(self, y0: torch.Tensor, args: torch.Tensor | None) -> MLPKernel | None:
        """The fused kernel for a solve from `y0` (B, dim), or None when it does not apply
        (an activation other than relu/tanh, or dtype/device/shape mismatches, which the plain
        forward then reports)."""
        modules = self.net._modules
        layers = (modules["0"], modules["2"], modules["4"])
        weight = layers[0].weight
        if (
            self.act not in FUSED_ACTIVATIONS
            or y0.ndim != 2
            or y0.shape[1] != self.dim
            or y0.dtype != weight.dtype
            or y0.device != weight.device
        ):
            return None
        control = None
        if self.control_dim:
            if (
                not isinstance(args, torch.Tensor)
                or args.shape != (y0.shape[0], self.control_dim)
                or args.dtype != weight.dtype
                or args.device != weight.device
            ):
                return None
            control = args
        params = tuple(p for layer in layers for p in (layer.weight, layer.bias))
        weights = _WEIGHTS.get(self)
        if weights is None or not weights.matches(params, self.act):
            weights = _WEIGHTS[self] = MLPWeights(layers, self.dim, self.time_dependent, self.act)
        return MLPKernel(weights, control, y0.shape[0])
