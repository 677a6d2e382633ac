"""The compiled step-size loop (`adaptive_solve`, `Stepper.whole`) against the Python loop
(`_loop.integrate`) it stands in for: bit-identical states, step counts and gradients (its tape
and its one-call sweep `tape_vjp` for `Backprop`, the backsolve adjoint's backward solve), and
the same `SolverError`s, with the same compiled steps underneath (`_compiled.WHOLE_SOLVES`
off)."""

from __future__ import annotations

import pytest
import torch
from problems import twisting_field

from pyanode._errors import SolverError
from pyanode.solvers import Adjoint, Backprop, Bosh3, Dopri5, PIController, Tsit5, solve
from pyanode.solvers._tableau import AbstractSolver, ButcherTableau
from pyanode.torch import _compiled

pytest.importorskip("numba")


class HeunEuler(AbstractSolver):
    """Heun–Euler 2(1): an adaptive method without FSAL (pyanode ships none), so that every
    step evaluates its first stage afresh."""

    tableau = ButcherTableau(
        c=(0.0, 1.0),
        a=((), (1.0,)),
        b=(0.5, 0.5),
        b_err=(-0.5, 0.5),
        order=2,
        b_dense=((1.0, -0.5), (0.0, 0.5)),
        dense_order=2,
    )


CASES = {
    "dp5": {},
    "dp5-tight": {"controller": PIController(rtol=1e-7, atol=1e-8)},
    "tsit5-pi": {"solver": Tsit5(), "controller": PIController(pcoeff=0.2, icoeff=0.65)},
    "bosh3-dt0-dtmax": {"solver": Bosh3(), "controller": PIController(dt0=0.05, dtmax=0.3)},
    "saveat-ends": {"saveat": [0.0, 1.5]},
    "land-end": {"saveat": [1.5], "land_saveat": True},
    "heun-euler": {"solver": HeunEuler()},
}


def _run(field, y0, x, gradient, t0, t1, **kwargs):
    """(ys, stats, every gradient) of a loss of one solve (no gradients for gradient None)."""
    field.zero_grad()
    y0 = y0.detach().clone().requires_grad_(gradient is not None)
    x = None if x is None else x.detach().clone().requires_grad_(gradient is not None)
    with torch.set_grad_enabled(gradient is not None):
        sol = solve(field, y0, t0, t1, args=x, gradient=gradient or Backprop(), **kwargs)
    if gradient is None:
        return sol.ys, sol.stats, []
    loss = (sol.ys**2).sum() + (sol.ys * torch.linspace(-1, 1, sol.ys.shape[-1])).sum()
    loss.backward()
    grads = [y0.grad] + ([] if x is None else [x.grad])
    return sol.ys.detach(), sol.stats, grads + [p.grad for p in field.parameters()]


def _both(monkeypatch, *args, **kwargs):
    """`_run` through the compiled loop (checking that it ran), then through the Python loop."""
    calls = []
    whole, sweep = _compiled.kernels().adaptive_solve, _compiled.kernels().tape_vjp

    def spy(*a):
        status = whole(*a)
        calls.append(("adjoint" if a[0] else "taped" if a[1] else "forward", status))
        return status

    def spy_sweep(*a):
        calls.append(("sweep", 0))
        return sweep(*a)

    monkeypatch.setattr(_compiled.kernels(), "adaptive_solve", spy)
    monkeypatch.setattr(_compiled.kernels(), "tape_vjp", spy_sweep)
    monkeypatch.setattr(_compiled, "_TAPE_ROWS", {})  # a tape starts with 8 rows
    compiled = _run(*args, **kwargs)
    assert calls, "the compiled loop was not taken"
    monkeypatch.setattr(_compiled, "WHOLE_SOLVES", False)
    n = len(calls)
    python = _run(*args, **kwargs)
    assert len(calls) == n  # the Python loop took every step
    return compiled, python, calls


def _assert_identical(compiled, python):
    (ys, stats, grads), (ys_p, stats_p, grads_p) = compiled, python
    assert torch.equal(ys, ys_p)
    assert stats == stats_p
    assert len(grads) == len(grads_p)
    for g, g_p in zip(grads, grads_p, strict=True):
        assert torch.equal(g, g_p)


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64], ids=str)
@pytest.mark.parametrize("case", CASES)
@pytest.mark.parametrize(
    ("control_dim", "time_dependent"), [(0, True), (2, False)], ids=["node", "control"]
)
@pytest.mark.parametrize(
    "gradient", [None, Backprop(), Adjoint()], ids=["no-grad", "backprop", "adjoint"]
)
def test_the_compiled_loop_equals_the_python_loop(monkeypatch, dtype, case, control_dim,
                                                  time_dependent, gradient):  # fmt: skip
    field = twisting_field(3, 16, act="relu", control_dim=control_dim,
                           time_dependent=time_dependent, dtype=dtype, scale=3.0)  # fmt: skip
    gen = torch.Generator().manual_seed(2)
    y0 = torch.randn(24, 3, generator=gen, dtype=dtype)
    x = torch.randn(24, control_dim, generator=gen, dtype=dtype) if control_dim else None
    compiled, python, calls = _both(monkeypatch, field, y0, x, gradient, 0.0, 1.5, **CASES[case])
    _assert_identical(compiled, python)
    kinds = {None: ["forward"], Backprop(): ["taped", "sweep"], Adjoint(): ["forward", "adjoint"]}
    assert [kind for kind, status in calls if status != _compiled.kernels().NEED_ROOM] == (
        kinds[gradient]
    )
    assert compiled[1].n_accepted >= 2
    if case == "dp5-tight" and gradient == Backprop():  # more steps than the tape's first rows
        assert compiled[1].n_accepted > 8
        assert [status for _, status in calls] == [_compiled.kernels().NEED_ROOM, 0, 0]


def test_rejected_steps_and_backward_time(monkeypatch):
    field = twisting_field(2, 32, act="relu", control_dim=0, time_dependent=True, scale=6.0)
    y0 = torch.randn(96, 2, generator=torch.Generator().manual_seed(3))
    rejected = []
    for t0, t1, gradient in ((0.0, 2.0, Adjoint()), (2.0, -0.5, Adjoint()), (0.0, 2.0, Backprop())):
        compiled, python, _ = _both(monkeypatch, field, y0, None, gradient, t0, t1)
        monkeypatch.undo()
        _assert_identical(compiled, python)
        rejected.append(compiled[1].n_rejected)
    assert rejected[0] > 0, rejected


def _error(monkeypatch, field, y0, **kwargs):
    """The `SolverError`s of the compiled loop and of the Python loop."""
    errors = []
    for whole in (True, False):
        monkeypatch.setattr(_compiled, "WHOLE_SOLVES", whole)
        with torch.no_grad(), pytest.raises(SolverError) as info:
            solve(field, y0, **kwargs)
        errors.append(info.value)
    return errors


@pytest.mark.parametrize(
    ("kwargs", "reason"),
    [
        ({"controller": PIController(max_steps=2)}, "max_steps"),
        ({"controller": PIController(rtol=1e-9, atol=1e-9, dtmin=0.05)}, "dt_underflow"),
        ({"controller": PIController(dt0=0.01, dtmin=0.02, dtmax=0.01)}, "dt_underflow"),
    ],
    ids=["max_steps", "dtmin", "dtmin-at-start"],
)
def test_the_same_solver_errors(monkeypatch, kwargs, reason):
    field = twisting_field(2, 32, act="relu", control_dim=0, time_dependent=True, scale=6.0)
    y0 = torch.randn(96, 2, generator=torch.Generator().manual_seed(3))
    compiled, python = _error(monkeypatch, field, y0, t1=2.0, **kwargs)
    assert compiled.reason == reason
    assert str(compiled) == str(python)
    assert (compiled.t, compiled.dt, compiled.nfe) == (python.t, python.dt, python.nfe)


@pytest.mark.parametrize("where", ["start", "later"])
@pytest.mark.parametrize("solver", [Dopri5(), Bosh3()], ids=repr)
def test_the_same_errors_for_a_nonfinite_field(monkeypatch, where, solver):
    field = twisting_field(2, 32, act="relu", control_dim=0, time_dependent=True)
    kwargs = {}
    with torch.no_grad():  # f is NaN everywhere, or finite at t = 0 only (t w_t overflows)
        if where == "later":
            field.net[0].weight[:, -1] = 3e38
            field.net[2].weight.mul_(1e10)
            kwargs["controller"] = PIController(dt0=0.1)  # the trial step would see NaN
        else:
            field.net[0].bias[0] = float("nan")
    y0 = torch.randn(8, 2, generator=torch.Generator().manual_seed(3))
    compiled, python = _error(monkeypatch, field, y0, solver=solver, **kwargs)
    assert compiled.reason == "nonfinite"
    assert ("at the initial state:" in compiled.message) == (where == "start")
    assert str(compiled) == str(python)
    assert (compiled.t, compiled.dt, compiled.nfe) == (python.t, python.dt, python.nfe)
