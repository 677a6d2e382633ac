"""Stage kernels: the right-hand side as one Runge–Kutta step sees it.

A step evaluates `f` at its stages and, for gradients, applies vector–Jacobian products (VJPs)
at them. A stage kernel is one solve's view of `f` that does both on the step's buffers, and
sums the parameter gradients of many VJPs. Every field goes through one of two kernels, and
both through the same step, the same reverse sweep (`Backprop`) and the same adjoint:

- `AutogradKernel`, for any vector field `f(t, y, args)`: an evaluation that a VJP will need
  builds the graph of that evaluation alone, from a fresh leaf copy of the stage input; its VJP
  is one `torch.autograd.grad` through that graph with respect to the stage input and the
  kernel's `inputs` (the tensors that require grad which `f` reaches, see `AutogradKernel`).
- a fused kernel, returned by `AbstractFusedField.fused_kernel` (e.g. `MLPField`'s): for the
  small fields of Neural ODEs an autograd-recorded evaluation costs several times its
  arithmetic, so a fused kernel writes its forward pass into the step's buffers, saves only
  what its hand-written VJP needs, and computes the parameter gradients of many VJPs at once (a
  few large matrix products instead of a few small ones per evaluation). Its gradients are
  first-order only.
"""

from __future__ import annotations

import abc
from collections.abc import Sequence
from functools import partial
from typing import Any

import torch
from torch import nn

from pyanode.solvers._step import Stepper

Grads = list[torch.Tensor | None]


class AbstractStageKernel(abc.ABC):
    """One solve's right-hand side: evaluations, VJPs and their parameter gradients.

    Attributes:
        arg_tensors: the tensors of `args` that get gradients.
        params: the other tensors that get gradients (a module's parameters).
        fold_every: VJP records summed per `gradients` call at most (bounds their memory).
        discovers: whether `params` may still grow while the solve runs (`AutogradKernel`).
        keeps_inputs: whether `evaluate(..., save=True)` keeps the stage input itself for its
            VJP (an autograd graph saves it and checks later that it was not modified): a
            recording stepper then hands each stage a tensor of its own, not a buffer row.
    """

    arg_tensors: tuple[torch.Tensor, ...]
    params: tuple[torch.Tensor, ...]
    fold_every: int = 32
    discovers: bool = False
    keeps_inputs: bool = False

    @property
    def inputs(self) -> tuple[torch.Tensor, ...]:
        """`(*arg_tensors, *params)`: the order of `gradients`."""
        return (*self.arg_tensors, *self.params)

    def stepper(self, solver: Any, like: torch.Tensor, **options: Any) -> Stepper:
        """The `Stepper` that takes this kernel's steps: the generic buffered one; a kernel
        that compiles whole steps and their VJPs returns its own subclass."""
        return Stepper(self, solver, like, **options)

    def adjoint_stepper(self, system: Any, solver: Any, like: torch.Tensor, **options: Any):
        """The `Stepper` of an adjoint's backward solve of `system` (its right-hand side, built
        on this kernel): the generic one; a compiled kernel may return its own."""
        return Stepper(system, solver, like, **options)

    def to_state(self, y: torch.Tensor) -> torch.Tensor:
        """A state (or states stacked on leading axes) in the layout the kernel steps in."""
        return y

    def from_state(self, x: torch.Tensor) -> torch.Tensor:
        """The inverse of `to_state` (may return a view of `x`)."""
        return x

    @abc.abstractmethod
    def evaluate(
        self, t: float, y: torch.Tensor, out: torch.Tensor | None, save: bool
    ) -> tuple[torch.Tensor, Any]:
        """`f(t, y)`, written into `out` when given, and what a VJP needs when `save`.

        Called with grad disabled. `y` may be a view of a buffer that later steps overwrite
        (unless `keeps_inputs`); a VJP of `saved` comes before that or after the whole solve,
        whose recorded steps' buffers are kept.

        **Returns:** `(k, saved)`: the value (no graph) and an opaque record (None unless `save`).
        """

    def evaluate_first(self, t: float, y: torch.Tensor, save: bool) -> tuple[torch.Tensor, Any]:
        """`evaluate` for a step's freshly evaluated first stage (at `t0` and after a jump)."""
        return self.evaluate(t, y, None, save)

    def check_complete(self, saved: Any, t: float) -> None:
        """Raise `ValueError` if the evaluation `saved` at `t` depends on tensors that require
        grad but are not `inputs` (their gradients would be lost); a kernel that knows its
        inputs has nothing to check."""
        return None

    @abc.abstractmethod
    def vjp(
        self, saved: Any, g: torch.Tensor, out: torch.Tensor | None, negate: bool = False
    ) -> tuple[torch.Tensor, Any]:
        """`g^T df/dy` (`-g^T df/dy` when `negate`) at the evaluation `saved`, written into
        `out` when given.

        **Returns:** `(g^T df/dy, record)`: the record holds what `gradients` needs for the
        gradients of this VJP with respect to `inputs` (always those of `+g`).
        """

    @abc.abstractmethod
    def gradients(self, records: Sequence[Any], weights: Sequence[float] | None) -> Grads:
        """`sum_i w_i g_i^T df/dx` for each tensor `x` of `inputs`, over the VJP `records`
        (`weights` one float per record, None for all ones); None for a tensor with none."""


class AbstractFusedField(abc.ABC):
    """A vector field that can provide its own stage kernel for a solve.

    `solve` uses the kernel instead of calling the field whenever `fused_kernel` returns one;
    forward hooks of the field's submodules are then not called, and the gradients are
    first-order only (a second backward raises). Wrap the field in a plain function,
    `lambda t, y, args: field(t, y, args)`, to go through autograd instead.
    """

    @abc.abstractmethod
    def fused_kernel(self, y0: torch.Tensor, args: Any) -> AbstractStageKernel | None:
        """The kernel for a solve from `y0` with `args`, or None to use the plain field."""


def stage_kernel(f: Any, y0: torch.Tensor, args: Any, *, keeps_inputs: bool) -> AbstractStageKernel:
    """The kernel of one solve of `f` from `y0`: the field's fused one if it has one, else an
    `AutogradKernel` (which looks for the tensors `f` differentiates only when grad is on)."""
    if isinstance(f, AbstractFusedField):
        kernel = f.fused_kernel(y0, args)
        if kernel is not None:
            return kernel
    return AutogradKernel(f, args, y0, discover=torch.is_grad_enabled(), keeps_inputs=keeps_inputs)


def tensors_of(args: Any) -> tuple[torch.Tensor, ...]:
    """The tensors of `args`: itself, or the tensors of a tuple or list (a namedtuple too)."""
    if isinstance(args, torch.Tensor):
        return (args,)
    if isinstance(args, (tuple, list)):
        return tuple(a for a in args if isinstance(a, torch.Tensor))
    return ()


class AutogradKernel(AbstractStageKernel):
    """Any vector field `f(t, y, args)` as a stage kernel: a graph per evaluation, VJPs by autograd.

    `inputs` are the tensors of `args` that require grad, then the parameters that require grad
    of `f` (an `nn.Module`) and every other leaf tensor requiring grad that the graph of a
    freshly evaluated first stage reaches (at `t0` and after each jump time): so a closure over
    a module's parameters is differentiated too, and so is a closure over a tensor computed
    from parameters before `solve` (through its leaves; each VJP then runs back through that
    computation: pass such a tensor in `args` instead, which is cheaper).

    Arguments:
        f: the vector field.
        args: passed to `f`.
        like: a state (dtype and device of the times handed to `f`).
        discover: look for inputs in the graphs of first stages (False when no gradient can
            be asked for).
        keeps_inputs: the VJPs come after the whole solve (`Backprop`), not right after each
            evaluation (the adjoint): see `AbstractStageKernel.keeps_inputs`.
    """

    def __init__(
        self, f: Any, args: Any, like: torch.Tensor, *, discover: bool, keeps_inputs: bool
    ):
        self.f, self.args = f, args
        self.make_t = partial(torch.scalar_tensor, dtype=like.dtype, device=like.device)
        self.discovers = discover
        self.keeps_inputs = keeps_inputs
        self.arg_tensors = tuple(a for a in tensors_of(args) if a.requires_grad)
        params = tuple(f.parameters()) if isinstance(f, nn.Module) else ()
        self.params: tuple[torch.Tensor, ...] = tuple(p for p in params if p.requires_grad)
        self._known = {id(x) for x in self.inputs}
        self._fold: tuple[int, int] = (-1, 1)  # (len(params), fold_every) of the last count
        # where the graph leaves f through an input of the solve: the non-leaf args
        self._exits = {(a.grad_fn, a.output_nr) for a in self.arg_tensors if a.grad_fn is not None}

    @property
    def fold_every(self) -> int:
        """A record holds one gradient per input: fold them about every 2 MiB."""
        n, every = self._fold
        if n != len(self.params):
            size = sum(x.numel() * x.element_size() for x in self.inputs)
            every = max(1, min(32, _FOLD_BYTES // max(size, 1)))
            self._fold = (len(self.params), every)
        return every

    def evaluate(self, t, y, out, save):
        if save:  # `y` is not written before the VJP: an alias of it is the graph's input
            with torch.enable_grad():
                y_in = y.detach().requires_grad_()
                k = self.f(self.make_t(t), y_in, self.args)
            saved = (y_in, k)
        else:
            k, saved = self.f(self.make_t(t), y, self.args), None
        if out is None:
            return k, saved
        return out.copy_(k), saved

    def evaluate_first(self, t, y, save):
        if not self.discovers:
            return self.evaluate(t, y, None, save)
        with torch.enable_grad():
            y_in = y.detach().requires_grad_() if save else y.detach()
            k = self.f(self.make_t(t), y_in, self.args)
        if k.grad_fn is not None:
            found = self._unknown_leaves(k.grad_fn, y_in)
            self._known.update(id(leaf) for leaf in found)
            self.params = (*self.params, *found)
        return k.detach(), ((y_in, k) if save else None)

    def _unknown_leaves(self, root: Any, y_in: torch.Tensor) -> list[torch.Tensor]:
        """The leaves requiring grad that the graph from `root` reaches (other than the stage
        input `y_in`, and not behind the non-leaf args) and that are not `inputs` yet."""
        seen, stack, found = set(), [root], []
        while stack:
            for node, nr in stack.pop().next_functions:
                if node is None or node in seen or (node, nr) in self._exits:
                    continue
                seen.add(node)
                leaf = getattr(node, "variable", None)
                if leaf is None:
                    stack.append(node)
                elif leaf is not y_in and id(leaf) not in self._known:  # AccumulateGrad: a leaf
                    found.append(leaf)
        return found

    def check_complete(self, saved: Any, t: float) -> None:
        """Raise `ValueError` if the evaluation `saved` (at `t`) reaches tensors that require
        grad which the first stages did not: their gradients would be lost silently."""
        y_in, k = saved
        if not self.discovers or k.grad_fn is None:
            return
        missing = self._unknown_leaves(k.grad_fn, y_in)
        if missing:
            shapes = ", ".join(str(tuple(x.shape)) for x in missing[:5])
            raise ValueError(
                f"the vector field uses {len(missing)} tensor(s) that require grad at t={t:g} "
                f"(shapes {shapes}) that it did not use at t0 or after a jump time, so they "
                "would get no gradient: pyanode finds the tensors of a closure in its graph "
                "there. Pass them in args (solve), list them in adjoint_params "
                "(odeint_adjoint), hold them as parameters of an nn.Module field, or give the "
                "time where the field changes in jump_ts (jump_t)"
            )

    def vjp(self, saved, g, out, negate=False):
        y_in, k = saved
        wrt = (y_in, *self.inputs)
        if k.requires_grad:  # torch.autograd.grad(k, wrt, g, retain_graph=True, allow_unused=True)
            grads = _run_backward((k,), (g,), True, False, wrt, True, False)
        else:
            grads = (None,) * len(wrt)
        gy = grads[0]
        if gy is None:
            gy = torch.zeros_like(g) if out is None else out.zero_()
        elif out is not None:
            gy = torch.neg(gy, out=out) if negate else out.copy_(gy)
        elif negate:
            gy = gy.neg()
        return gy, grads[1:]

    def gradients(self, records, weights):
        total: Grads = []
        for i in range(len(self.inputs)):
            present = [n for n, record in enumerate(records) if record[i] is not None]
            if not present:
                total.append(None)
                continue
            stacked = torch.stack([records[n][i] for n in present])
            if weights is None:
                total.append(stacked.sum(0))
            else:
                w = torch.tensor([weights[n] for n in present], dtype=stacked.dtype)
                total.append(torch.tensordot(w.to(stacked.device), stacked, dims=1))
        return total


_FOLD_BYTES = 2 << 20
# The engine call of torch.autograd.grad, without its Python-side argument checks (about a
# fifth of a small field's VJP): `(outputs, grad_outputs, retain_graph, create_graph, inputs,
# allow_unused, accumulate_grad)`. One VJP per stage makes that overhead count.
_run_backward = torch.autograd.Variable._execution_engine.run_backward


class GradientSum:
    """Running `AbstractStageKernel.gradients` over VJP records added one by one.

    Records are summed in chunks of `kernel.fold_every`, so that the records of a long solve
    never all live at once (the adjoint's memory stays flat in the number of steps).
    """

    def __init__(self, kernel: AbstractStageKernel):
        self.kernel = kernel
        self.records: list[Any] = []
        self.weights: list[float] = []
        self.total: Grads | None = None

    def add(self, record: Any, weight: float = 1.0) -> bool:
        """Add `weight` times the gradients of `record`; True when that folded the records."""
        self.records.append(record)
        self.weights.append(weight)
        if len(self.records) >= self.kernel.fold_every:
            self.fold()
            return True
        return False

    def fold(self) -> None:
        """Sum the pending records into the totals and drop them."""
        if not self.records and self.total is not None:
            return
        weights = None if all(w == 1.0 for w in self.weights) else self.weights
        grads = self.kernel.gradients(self.records, weights)
        self.records, self.weights = [], []
        if self.total is None:
            self.total = grads
        else:
            self.total = [_add(a, b) for a, b in zip(self.total, grads, strict=True)]

    def result(self) -> Grads:
        """The gradients for `kernel.inputs` over everything added."""
        self.fold()
        return self.total


def _add(a: torch.Tensor | None, b: torch.Tensor | None) -> torch.Tensor | None:
    if a is None:
        return b
    return a if b is None else a.add_(b)
