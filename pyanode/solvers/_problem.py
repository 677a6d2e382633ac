"""What one solve is: the validated request, the result and its statistics, and the interface
of the gradient methods that run it.

The request's field is called `f(t, y, args)` (`VectorField`). A field is passed as
`f(t, y, args)` (pyanode, diffrax), `f(t, y)` (torchdiffeq, torchdyn) or `f(y)` (torchdyn, an
`nn.Sequential`), told apart once per field from its signature (`field_shape`), never per call;
a field of another shape is wrapped in an adapter that drops what it does not take
(`as_field`). The adapter is a module holding the field, so the parameters of a module field are
the adapter's and get gradients under every gradient method.
"""

from __future__ import annotations

import abc
import inspect
import math
import weakref
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import torch
from torch import nn

from pyanode.solvers._tableau import AbstractSolver

VectorField = Callable[[torch.Tensor, torch.Tensor, Any], torch.Tensor]

SHAPES = ("t, y, args", "t, y", "y")
_POSITIONAL = (inspect.Parameter.POSITIONAL_ONLY, inspect.Parameter.POSITIONAL_OR_KEYWORD)
_TIME_NAMES = ("t", "time", "s", "tau")

# signatures are read once per function (its code) or per module class
_SHAPE_OF: weakref.WeakKeyDictionary[Any, str] = weakref.WeakKeyDictionary()
# the adapter of a field, made once per field object
_ADAPTERS: weakref.WeakKeyDictionary[Any, Any] = weakref.WeakKeyDictionary()


def field_shape(f: Any) -> str:
    """How `f` takes its arguments: one of `SHAPES`, read from its signature.

    Read from the required positional parameters (for an `nn.Module`, those of its `forward`):
    three (or `*args`, or an optional third one named `args`) mean `f(t, y, args)`, two
    `f(t, y)`, one `f(y)`; optional parameters beyond those keep their defaults.

    **Raises:** `TypeError` for a field that is not callable, whose signature cannot be read
    or that fits none of the shapes (with the fix), or that looks like scipy's `f(y, t)`.
    """
    if not callable(f):
        raise TypeError(f"the vector field must be callable, got {type(f).__name__}")
    target = f.forward if isinstance(f, nn.Module) else f
    key = _cache_key(f, target)
    if key is not None:
        found = _SHAPE_OF.get(key)
        if found is not None:
            return found
    shape = _read_shape(f, target)
    if key is not None:
        _SHAPE_OF[key] = shape
    return shape


def _cache_key(f: Any, target: Any) -> Any:
    """What the signature depends on: the module's class, or the function's code object."""
    if isinstance(f, nn.Module):
        return type(f)
    func = getattr(target, "__func__", target)  # a bound method: its function
    code = getattr(func, "__code__", None)
    if code is not None and not getattr(func, "__defaults__", None):
        return code
    return None  # partials, callable objects, defaults: read each time (cheap enough)


def _read_shape(f: Any, target: Any) -> str:
    name = getattr(f, "__name__", type(f).__name__)
    try:
        params = list(inspect.signature(target).parameters.values())
    except (TypeError, ValueError):
        raise TypeError(
            f"cannot read the signature of the vector field {name}; wrap it as "
            "lambda t, y, args: ... (or lambda t, y: ...)"
        ) from None
    if any(p.kind is inspect.Parameter.VAR_POSITIONAL for p in params):
        return "t, y, args"
    positional = [p for p in params if p.kind in _POSITIONAL]
    required = [p for p in positional if p.default is inspect.Parameter.empty]
    if len(required) > 3 or not positional:
        raise TypeError(
            f"the vector field {name} takes {len(required)} required positional arguments "
            f"({', '.join(p.name for p in required)}); it is called as f(t, y, args), "
            "f(t, y) or f(y)"
        )
    if len(required) == 3 or (len(positional) >= 3 and positional[2].name == "args"):
        return "t, y, args"
    taken = positional[: max(len(required), 1)]  # optional parameters keep their defaults
    if len(taken) == 2:
        first, second = (p.name for p in taken)
        if second in _TIME_NAMES and first not in _TIME_NAMES:
            raise TypeError(
                f"the vector field {name}({first}, {second}) looks like scipy's f(y, t); "
                f"pyanode calls f(t, y): swap the arguments, or wrap it as lambda t, y: "
                f"{name}(y, t)"
            )
    return "t, y" if len(taken) == 2 else "y"


def as_field(f: Any) -> Any:
    """`f` as a field called `f(t, y, args)`: `f` itself when it takes those, else its adapter
    (made once per field).

    **Raises:** `TypeError` as `field_shape`.
    """
    shape = field_shape(f)
    if shape == "t, y, args":
        return f
    try:
        adapter = _ADAPTERS.get(f)
    except TypeError:  # not weakly referenceable: adapt at each call
        return _Adapter(f, shape)
    if adapter is None:
        adapter = _ADAPTERS[f] = _Adapter(f, shape)
    return adapter


class _Adapter(nn.Module):
    """A field of shape `(t, y)` or `(y)` called as `f(t, y, args)` (`args` dropped).

    A module, so that the parameters of a module field are its own (a plain function has none:
    its tensors are found from its graph, as for any closure).
    """

    def __init__(self, field: Any, shape: str):
        super().__init__()
        self.field, self.takes_t = field, shape == "t, y"

    def __call__(self, t, y, args):  # no module hooks here: the field's own call has them
        return self.field(t, y) if self.takes_t else self.field(y)


@dataclass
class SolverStats:
    """Work done by one solve; mutable because the backward pass fills in `nfe_backward`.

    Arguments:
        nfe_forward: vector-field evaluations of the forward solve, including the one of the
            initial step selection and those of rejected steps.
        nfe_backward: vector-field evaluations of the backward pass, counted when it runs
            (after `loss.backward()`; it adds up if backward runs twice). `Adjoint`: evaluations
            of the augmented field, each one `f` and one vector-Jacobian product. `Backprop`:
            the vector-Jacobian products through `f`, one per stage evaluation of the accepted
            steps that the final state depends on (rejected steps and the step-size selection
            are not differentiated).
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


@dataclass(eq=False)
class SolveRequest:
    """A validated call of `solve`, handed to the gradient method (times as floats, `save_ts`,
    `jump_ts` and `step_ts` ordered from `t0` to `t1`).

    `tolerances` are the error ratio's `(rtol, atol)` (the controller's, or per element: `atol`
    a tensor shaped like the state), `norm` the error norm (None: RMS), `land_saveat` whether
    the steps land on the save times (else they are interpolated), and `times` the tensors
    `(t0, t1, saveat)` that require grad (None for the others, or None for none).
    """

    f: VectorField
    y0: torch.Tensor
    args: Any
    solver: AbstractSolver
    controller: Any
    t0: float
    t1: float
    save_ts: list[float]
    jump_ts: list[float]
    stats: SolverStats
    step_ts: list[float] = field(default_factory=list)
    land_saveat: bool = False
    tolerances: tuple[Any, Any] | None = None
    norm: Callable[[torch.Tensor], float] | None = None
    times: tuple[torch.Tensor | None, ...] | None = None

    def stepper(self, kernel: Any, like: torch.Tensor, **options: Any) -> Any:
        """The forward stepper of this solve for `kernel` on states `like` (in its layout):
        per-element tolerances and a user norm are moved to that layout."""
        tolerances, norm = self.tolerances, self.norm
        if tolerances is not None and isinstance(tolerances[1], torch.Tensor):
            tolerances = (tolerances[0], kernel.to_state(tolerances[1].expand_as(self.y0)))
        if norm is not None:
            user, from_state = norm, kernel.from_state

            def norm(e: torch.Tensor) -> float:
                return float(user(from_state(e)))

        return kernel.stepper(self.solver, like, tolerances=tolerances, norm=norm, **options)

    def time_gradients(
        self, kernel: Any, xs: torch.Tensor, grads: torch.Tensor, grad_x0: torch.Tensor
    ) -> list[torch.Tensor | None]:
        """The gradients for the tensors of `times`, those of the exact solution:
        `dL/dsaveat_i = g_i . f(saveat_i, y_i)`, `dL/dt1 = g . f(t1, y(t1))` and `dL/dt0 =
        -dL/dy0 . f(t0, y0)` (moving `t0` shifts the whole solution), from the forward's result
        `xs`, its gradient `grads` and `grad_x0` = dL/dy0, all in the kernel's layout. Each
        costs evaluations of `f`, counted in `stats.nfe_backward`.
        """
        if self.times is None:
            return [None, None, None]
        t0, t1, saveat = self.times

        def f_dot(t: float, x: torch.Tensor, g: torch.Tensor) -> torch.Tensor:
            if t in self.jump_ts:  # on a jump: the piece the solve arrives from
                t = math.nextafter(t, self.t0)
            self.stats.nfe_backward += 1
            return (kernel.evaluate(t, x, None, False)[0] * g).sum()

        out: list[torch.Tensor | None] = [None, None, None]
        x0 = kernel.to_state(self.y0)
        if t0 is not None:
            t = math.nextafter(self.t0, self.t1) if self.t0 in self.jump_ts else self.t0
            self.stats.nfe_backward += 1
            out[0] = -(kernel.evaluate(t, x0, None, False)[0] * grad_x0).sum().view_as(t0)
        if t1 is not None:
            out[1] = f_dot(self.t1, xs, grads).view_as(t1)
        if saveat is not None:
            parts = [f_dot(s, x, g) for s, x, g in zip(self.save_ts, xs, grads, strict=True)]
            out[2] = torch.stack(parts).to(saveat.dtype)
        return [None if g is None else g.to(x) for g, x in zip(out, self.times, strict=True)]


class AbstractGradientMethod(abc.ABC):
    """How `solve` is differentiated; a final subclass is a frozen dataclass of its options."""

    @abc.abstractmethod
    def run(self, request: SolveRequest) -> torch.Tensor:
        """Solve `request` and return `ys` (stacked saves, or the final state); fill its stats."""
