"""The fused kernel of `MLPField`: its forward pass and VJP in a handful of BLAS calls.

`f(t, z, x) = W2 act(W1 act(W0 [z, x, t] + b0) + b1) + b2` with the first layer split by columns:
`W0 [z, x, t] + b0 = W0z z + (W0x x + b0) + t w_t`, so `t` enters as a rank-one bias (no
concatenation) and the data-control term `W0x x + b0` is computed once per solve. The states are
kept features-major, `z^T` of shape (d, B): every product then has the batch as its long output
dimension, which small-matrix BLAS handles about twice as fast as a (B, d) output with d = 2.
One evaluation is `add, addmm, act_, addmm, act_, addmm`; one VJP is `mm, act', mm, act', mm`,
with `act'` read from the saved post-activations (ReLU: `h > 0`; tanh: `1 - h^2`). The weight
gradients of a fold of VJPs are three matrix products over the stacked records, or, for large
records, products accumulated record by record (`stacks_records`). The
parameters stay the `nn.Linear` modules of `MLPField.net`, so the flat parameter order is unchanged.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import torch
from torch import nn

from pyanode.solvers import AbstractStageKernel
from pyanode.torch import _compiled

_threshold_backward = torch.ops.aten.threshold_backward.default
_tanh_backward = torch.ops.aten.tanh_backward.default


def _relu_backward(g: torch.Tensor, h: torch.Tensor) -> torch.Tensor:
    return _threshold_backward(g, h, 0)


_FOLD_BYTES = 2 << 20  # stacked VJP records per parameter-gradient fold


def stacks_records(batch: int, hidden: int) -> bool:
    """Whether `MLPKernel.gradients` stacks a fold's VJP records side by side (one product per
    weight: few BLAS calls, for small records) rather than accumulating them record by record
    in place (`addmm_`), where each record's products are large enough for BLAS and stacking
    would only copy them all once more. Measured on one core (`gradients` alone, medians of 15):
    stacking wins below 16K hidden activations per record with width < 128 (e.g. 2.0x at batch
    96, width 32), accumulating above (2x at batch 1024, width 256)."""
    return batch * hidden < 16384 and hidden < 128


# activation name -> (in-place activation, its backward from the output)
FUSED_ACTIVATIONS = {
    "relu": (torch.relu_, _relu_backward),
    "tanh": (torch.tanh_, _tanh_backward),
}


class MLPWeights:
    """Detached views of an MLP field's weights in the layout of `MLPKernel` (no copies).

    Views alias the parameters' storage, so in-place optimiser updates are seen; `matches`
    tells whether the parameters are still the same tensors with the same storage.

    Arguments:
        layers: the three `nn.Linear` layers of the field, in order.
        dim: the state dimension d (the first d input columns of the first layer).
        time_dependent: whether the last input column of the first layer is t.
        activation: a key of `FUSED_ACTIVATIONS`.
    """

    def __init__(
        self, layers: Sequence[nn.Linear], dim: int, time_dependent: bool, activation: str
    ):
        first, middle, last = layers
        self.params = (first.weight, first.bias, middle.weight, middle.bias, last.weight, last.bias)
        self.pointers = tuple(p.data_ptr() for p in self.params)
        self.activation = activation
        w0 = first.weight.detach()
        self.dim = dim
        self.w0z = w0[:, :dim]
        self.w_t = w0[:, -1:] if time_dependent else None  # (h, 1)
        self.b0 = first.bias.detach().unsqueeze(1)
        self.w1 = middle.weight.detach()
        self.b1 = middle.bias.detach().unsqueeze(1)
        self.w2 = last.weight.detach()
        self.b2 = last.bias.detach().unsqueeze(1)
        # transposed views for the VJP (BLAS reads them as they are)
        self.w0z_t, self.w1_t, self.w2_t = self.w0z.t(), self.w1.t(), self.w2.t()

    def matches(self, params: tuple[torch.Tensor, ...], activation: str) -> bool:
        """Whether these views still belong to `params` (same tensors, same storage)."""
        return (
            activation == self.activation
            and all(a is b for a, b in zip(params, self.params, strict=True))
            and all(p.data_ptr() == q for p, q in zip(params, self.pointers, strict=True))
        )


class MLPKernel(AbstractStageKernel):
    """`MLPField`'s fused kernel for one solve (see the module docstring).

    Arguments:
        weights: the field's `MLPWeights`.
        control: the (B, c) data-control input x, or None.
        batch: the batch size B of the states.
    """

    def __init__(self, weights: MLPWeights, control: torch.Tensor | None, batch: int):
        w = weights
        self.params = w.params
        self.act, self.act_backward = FUSED_ACTIVATIONS[w.activation]
        self.relu = w.activation == "relu"
        self.w0z, self.w_t, self.w0z_t = w.w0z, w.w_t, w.w0z_t
        self.w1, self.b1, self.w1_t = w.w1, w.b1, w.w1_t
        self.w2, self.b2, self.w2_t = w.w2, w.b2, w.w2_t
        self._negated = None  # -W0z^T, made on the first negated VJP (adjoint)
        # a record holds y, g (d, B) and h0, h1, ga1, ga0 (h, B): fold at about 2 MiB of them
        d, h = w.w0z.shape[1], w.w1.shape[0]
        record_bytes = (2 * d + 4 * h) * max(batch, 1) * w.w1.element_size()
        self.fold_every = max(4, min(64, _FOLD_BYTES // record_bytes))
        if control is None:
            self.control = self.w0x = None
            self.bias0 = w.b0
            self.arg_tensors = ()
        else:
            self.control = control.detach()
            w0 = self.params[0].detach()
            self.w0x = w0[:, w.dim : w.dim + control.shape[1]]
            self.bias0 = torch.addmm(w.b0, self.w0x, self.control.t())  # (h, B)
            self.arg_tensors = (control,)

    def stepper(self, solver, like, **options):
        """The compiled stepper where `_compiled.compiled_applies`, else the generic one."""
        return _compiled.stepper(self, solver, like, **options)

    def adjoint_stepper(self, system, solver, like, **options):
        """The compiled stepper of the backsolve adjoint where it applies, else the generic."""
        return _compiled.adjoint_stepper(self, system, solver, like, **options)

    def to_state(self, y: torch.Tensor) -> torch.Tensor:
        return y.transpose(-1, -2).contiguous()

    def from_state(self, x: torch.Tensor) -> torch.Tensor:
        return x.transpose(-1, -2)

    def evaluate(self, t, y, out, save):
        # Written for few Python-level operations: this runs once per stage.
        act = self.act
        w_t = self.w_t
        bias = self.bias0 if w_t is None else torch.add(self.bias0, w_t, alpha=t)
        h0 = act(torch.addmm(bias, self.w0z, y))
        h1 = act(torch.addmm(self.b1, self.w1, h0))
        if out is None:
            k = torch.addmm(self.b2, self.w2, h1)
        else:
            k = torch.addmm(self.b2, self.w2, h1, out=out)
        return k, ((t, y, h0, h1) if save else None)

    def vjp(self, saved, g, out, negate=False):
        _, _, h0, h1 = saved
        if self.relu:
            ga1 = _threshold_backward(torch.mm(self.w2_t, g), h1, 0)
            ga0 = _threshold_backward(torch.mm(self.w1_t, ga1), h0, 0)
        else:
            back = self.act_backward
            ga1 = back(torch.mm(self.w2_t, g), h1)
            ga0 = back(torch.mm(self.w1_t, ga1), h0)
        w = self.w0z_t
        if negate:
            w = self._negated
            if w is None:
                w = self._negated = self.w0z_t.neg()
        gy = torch.mm(w, ga0) if out is None else torch.mm(w, ga0, out=out)
        return gy, (*saved, g, ga1, ga0)

    def gradients(
        self, records: Sequence[Any], weights: Sequence[float] | None
    ) -> list[torch.Tensor | None]:
        if not records:
            return [torch.zeros_like(x) for x in self.inputs]
        if not stacks_records(records[0][1].shape[1], self.w1.shape[0]):
            return self._accumulated(records, weights)
        n = len(records)
        # (features, n * batch): the records side by side
        y, h0, h1, g, ga1, ga0 = (torch.cat([r[i] for r in records], dim=1) for i in range(1, 7))
        hidden, batch = ga0.shape[0], records[0][1].shape[1]
        if weights is not None:
            w = torch.tensor(weights, dtype=g.dtype, device=g.device).repeat_interleave(batch)
            g, ga1, ga0 = g * w, ga1 * w, ga0 * w
        parts = [torch.mm(ga0, y.t())]
        arg_grads: list[torch.Tensor | None] = []
        if self.control is not None:
            ga0_sum = ga0.view(hidden, n, batch).sum(1)  # (h, B)
            parts.append(torch.mm(ga0_sum, self.control))
            arg_grads.append(torch.mm(ga0_sum.t(), self.w0x))
        if self.w_t is not None:
            ts = torch.tensor([r[0] for r in records], dtype=g.dtype, device=g.device)
            parts.append(torch.mv(ga0.view(hidden, n, batch).sum(2), ts).unsqueeze(1))
        grad_w0 = torch.cat(parts, dim=1) if len(parts) > 1 else parts[0]
        grads = [
            grad_w0,
            ga0.sum(1),
            torch.mm(ga1, h0.t()),
            ga1.sum(1),
            torch.mm(g, h1.t()),
            g.sum(1),
        ]
        return [*arg_grads, *grads]

    def _accumulated(
        self, records: Sequence[Any], weights: Sequence[float] | None
    ) -> list[torch.Tensor | None]:
        """`gradients` record by record, accumulated in place (`addmm_`): at a large batch each
        record's products are large enough for BLAS, and stacking the records would copy them
        all once more."""
        y, h0, g = records[0][1], records[0][2], records[0][4]
        like = {"dtype": g.dtype, "device": g.device}
        hidden, batch = h0.shape[0], y.shape[1]
        ones = torch.ones(batch, **like)
        gw0z, gw1, gw2 = (torch.zeros_like(w) for w in (self.w0z, self.w1, self.w2))
        gb0, gb1, gb2 = (torch.zeros(n, **like) for n in (hidden, hidden, g.shape[0]))
        gwt = torch.zeros(hidden, **like)  # the time column of W0, by sum_i w_i t_i ga0_i 1
        ga0_sum = torch.zeros(hidden, batch, **like) if self.control is not None else None
        rows = torch.empty(hidden, **like)
        for i, (t, y, h0, h1, g, ga1, ga0) in enumerate(records):
            a = 1.0 if weights is None else weights[i]
            gw0z.addmm_(ga0, y.t(), alpha=a)
            gw1.addmm_(ga1, h0.t(), alpha=a)
            gw2.addmm_(g, h1.t(), alpha=a)
            torch.mv(ga0, ones, out=rows)
            gb0.add_(rows, alpha=a)
            gwt.add_(rows, alpha=a * t)
            gb1.addmv_(ga1, ones, alpha=a)
            gb2.addmv_(g, ones, alpha=a)
            if ga0_sum is not None:
                ga0_sum.add_(ga0, alpha=a)
        parts = [gw0z]
        arg_grads: list[torch.Tensor | None] = []
        if ga0_sum is not None:
            parts.append(torch.mm(ga0_sum, self.control))
            arg_grads.append(torch.mm(ga0_sum.t(), self.w0x))
        if self.w_t is not None:
            parts.append(gwt.unsqueeze(1))
        grad_w0 = torch.cat(parts, dim=1) if len(parts) > 1 else gw0z
        return [*arg_grads, grad_w0, gb0, gw1, gb1, gw2, gb2]
