"""What `solve` returns: the states and the step statistics."""

from __future__ import annotations

from dataclasses import dataclass

import torch


@dataclass
class SolverStats:
    """Work done by one solve; mutable because the backward pass fills in `nfe_backward`.

    Arguments:
        nfe_forward: vector-field evaluations of the forward solve, including the one of the
            initial step selection and those of rejected steps.
        nfe_backward: vector-field evaluations of the backward pass, counted when it runs
            (after `loss.backward()`; it adds up if backward runs twice). `Adjoint`: evaluations
            of the augmented field, each one `f` and one vector-Jacobian product. `Backprop`:
            the vector-Jacobian products through `f` in the recorded graph, one per stage
            evaluation of the accepted steps that the final state depends on (rejected steps
            and the step-size selection are not in the graph).
        n_accepted: accepted steps of the forward solve.
        n_rejected: rejected steps of the forward solve.
    """

    nfe_forward: int = 0
    nfe_backward: int = 0
    n_accepted: int = 0
    n_rejected: int = 0


@dataclass(frozen=True)
class Solution:
    """The result of `solve`.

    Arguments:
        ys: the states at `saveat`, shape `(len(saveat), *y0.shape)`, or `y(t1)` (the shape of
            `y0`) when `saveat` is None.
        ts: the times of `ys`: `saveat`, or the 0-d tensor `t1`.
        stats: `SolverStats` of this solve.
    """

    ys: torch.Tensor
    ts: torch.Tensor
    stats: SolverStats
