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
    fold_every: int = 32  # records per `gradients` call at most (bounds their stacked memory)

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


class GradientSum:
    """Running `AbstractFusedKernel.gradients` over VJP records added one by one.

    Records are summed in chunks of `kernel.fold_every`, so that the stacked records of a long
    solve never all live at once (the adjoint's memory stays flat in the number of steps).
    """

    def __init__(self, kernel: AbstractFusedKernel):
        self.kernel = kernel
        self.records: list[Any] = []
        self.weights: list[float] = []
        self.params: list[torch.Tensor | None] | None = None
        self.args: list[torch.Tensor | None] | None = None

    def add(self, record: Any, weight: float = 1.0) -> bool:
        """Add `weight * (g^T df/dtheta, g^T df/dargs)` of `record`; True when it folded."""
        self.records.append(record)
        self.weights.append(weight)
        if len(self.records) >= self.kernel.fold_every:
            self.fold()
            return True
        return False

    def fold(self) -> None:
        """Sum the pending records into the totals and drop them."""
        if not self.records and self.params is not None:
            return
        weights = None if all(w == 1.0 for w in self.weights) else self.weights
        params, args = self.kernel.gradients(self.records, weights)
        self.records, self.weights = [], []
        if self.params is None:
            self.params, self.args = params, args
        else:
            self.params = [_add(a, b) for a, b in zip(self.params, params, strict=True)]
            self.args = [_add(a, b) for a, b in zip(self.args, args, strict=True)]

    def result(self) -> tuple[list[torch.Tensor | None], list[torch.Tensor | None]]:
        """`(param_grads, arg_grads)` over everything added."""
        self.fold()
        return self.params, self.args


def _add(a: torch.Tensor | None, b: torch.Tensor | None) -> torch.Tensor | None:
    if a is None:
        return b
    return a if b is None else a.add_(b)


def fused_kernel_of(f: Any, y0: torch.Tensor, args: Any) -> AbstractFusedKernel | None:
    """The fused kernel of `f` for a solve from `y0` with `args`, if `f` has one."""
    if isinstance(f, AbstractFusedField):
        return f.fused_kernel(y0, args)
    return None
