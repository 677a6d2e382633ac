"""Vector fields that evaluate and differentiate themselves without autograd ("fused" fields).

For the small fields of Neural ODEs (an MLP of width 32 on a batch of 96) one autograd-recorded
evaluation costs several times its arithmetic: every op records a node, saves its inputs and
runs a node in backward. A field that implements `AbstractFusedField` hands the solver a
per-solve `AbstractFusedKernel` instead: a forward pass that writes into the solver's buffers
and saves only what its hand-written vector-Jacobian product needs, and parameter gradients
computed once per solve from all the recorded VJPs (a few large matrix products instead of a
few small ones per evaluation). `Backprop` then records one autograd node per solve and
`Adjoint(seminorm=True)` integrates only the state and its adjoint (see `_fused_backprop.py`
and `_adjoint.py`). The gradients are those of the same discretisation, to round-off.
"""

from __future__ import annotations

import abc
from collections.abc import Sequence
from typing import Any

import torch


class AbstractStageKernel(abc.ABC):
    """What a buffered Runge–Kutta step needs from the right-hand side: one evaluation."""

    @abc.abstractmethod
    def evaluate(
        self, t: float, y: torch.Tensor, out: torch.Tensor | None, save: bool
    ) -> tuple[torch.Tensor, Any]:
        """`f(t, y)`, written into `out` when given, and what a VJP needs when `save`.

        **Returns:** `(k, saved)`: the value and an opaque record (None when not `save`).
        """


class AbstractFusedKernel(AbstractStageKernel):
    """One solve's view of a fused field: evaluation, VJP and batched parameter gradients.

    Built by `AbstractFusedField.fused_kernel` for one `(y0, args)`; holds the detached
    weights in the layout its matrix products want, and may keep the states in a layout of its
    own (`to_state`/`from_state`, e.g. features-major for small state dimensions).

    Attributes:
        params: the tensors (leaves, usually the field's parameters) whose gradients
            `gradients` returns, in that order.
        arg_tensors: the tensors of `args` whose gradients `gradients` returns.
    """

    params: tuple[torch.Tensor, ...]
    arg_tensors: tuple[torch.Tensor, ...]

    @abc.abstractmethod
    def to_state(self, y: torch.Tensor) -> torch.Tensor:
        """A state (or a stack of states on leading axes) in the kernel's layout, as a new
        contiguous tensor; the solver steps in this layout."""

    @abc.abstractmethod
    def from_state(self, x: torch.Tensor) -> torch.Tensor:
        """The inverse of `to_state` (may return a view of `x`)."""

    @abc.abstractmethod
    def vjp(
        self, saved: Any, g: torch.Tensor, out: torch.Tensor | None, negate: bool = False
    ) -> tuple[torch.Tensor, Any]:
        """`g^T df/dy` (`-g^T df/dy` when `negate`) at the evaluation `saved`, written into
        `out` when given.

        **Returns:** `(g^T df/dy, record)`: the record holds what `gradients` needs for the
        parameter and `args` gradients of this VJP (always those of `+g`).
        """

    @abc.abstractmethod
    def gradients(
        self, records: Sequence[Any], weights: Sequence[float] | None
    ) -> tuple[list[torch.Tensor | None], list[torch.Tensor | None]]:
        """`sum_i w_i g_i^T df/dtheta` and `sum_i w_i g_i^T df/dargs` over the VJP `records`.

        **Arguments:**

        - `records`: the records returned by `vjp`.
        - `weights`: one float per record, or None for all ones.

        **Returns:** `(param_grads, arg_grads)` matching `params` and `arg_tensors` (None for a
        tensor that gets no gradient).
        """


class AbstractFusedField(abc.ABC):
    """A vector field that can provide an `AbstractFusedKernel` for a solve.

    `solve` uses the kernel instead of calling the field whenever `fused_kernel` returns one;
    forward hooks of the field's submodules are then not called, and the gradients are
    first-order only (a second backward raises). Wrap the field in a plain function,
    `lambda t, y, args: field(t, y, args)`, to go through autograd instead.
    """

    @abc.abstractmethod
    def fused_kernel(self, y0: torch.Tensor, args: Any) -> AbstractFusedKernel | None:
        """The kernel for a solve from `y0` with `args`, or None to use the plain field."""


def fused_kernel_of(f: Any, y0: torch.Tensor, args: Any) -> AbstractFusedKernel | None:
    """The fused kernel of `f` for a solve from `y0` with `args`, if `f` has one."""
    if isinstance(f, AbstractFusedField):
        return f.fused_kernel(y0, args)
    return None
