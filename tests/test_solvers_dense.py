"""Dense output: save times interpolated by the tableau's continuous extension instead of
landed on, their accuracy and their gradients (the option `land_saveat` keeps landing)."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from problems import ALL_SOLVERS, COSINE, LINEAR, MLPField

from pyanode.solvers import (
    RK4,
    Adjoint,
    Backprop,
    Bosh3,
    ConstantStepSize,
    Dopri5,
    InterpolatingAdjoint,
    PIController,
    Tsit5,
    solve,
)

ADAPTIVE = (Bosh3(), Dopri5(), Tsit5())


def _name(x):
    return type(x).__name__


@pytest.mark.parametrize("solver", ALL_SOLVERS, ids=_name)
def test_interpolated_saves_keep_the_order_of_the_method(solver, float64):
    # Fixed steps h, save times in the middle of steps: the error there falls like h^order
    # (the continuous extension of order q adds O(h^(q+1)) per step, q + 1 >= order).
    y0 = torch.tensor(LINEAR.y0)
    errors, hs = [], [0.2, 0.1, 0.05, 0.025]
    saveat = [0.33, 1.01, 1.77]  # never on the grids
    exact = np.stack([LINEAR.exact(t, LINEAR.y0) for t in saveat])
    for h in hs:
        sol = solve(LINEAR.f, y0, 0.0, 2.0, solver=solver, controller=ConstantStepSize(h),
                    saveat=saveat)  # fmt: skip
        assert sol.stats.n_accepted == round(2.0 / h)  # the saves did not split any step
        errors.append(np.abs(sol.ys.numpy() - exact).max())
    slope = np.polyfit(np.log(hs), np.log(errors), 1)[0]
    assert slope > solver.order - 0.3, (errors, slope)


@pytest.mark.parametrize("solver", ADAPTIVE, ids=_name)
def test_saves_do_not_change_the_steps(solver, float64):
    # The same steps, evaluations and final state with or without 50 save times.
    y0 = torch.tensor(LINEAR.y0)
    ctrl = PIController(rtol=1e-6, atol=1e-8)
    alone = solve(LINEAR.f, y0, 0.0, 2.0, solver=solver, controller=ctrl)
    saved = solve(LINEAR.f, y0, 0.0, 2.0, solver=solver, controller=ctrl,
                  saveat=torch.linspace(0.0, 2.0, 50))  # fmt: skip
    assert saved.stats == alone.stats
    torch.testing.assert_close(saved.ys[-1], alone.ys, rtol=0, atol=0)
    exact = np.stack([LINEAR.exact(t, LINEAR.y0) for t in np.linspace(0.0, 2.0, 50)])
    tol = 1e-4 if isinstance(solver, Bosh3) else 1e-6  # the tolerance reached, by measurement
    np.testing.assert_allclose(saved.ys.numpy(), exact, atol=tol)


@pytest.mark.parametrize("solver", ADAPTIVE, ids=_name)
def test_dense_and_landed_saves_agree(solver, float64):
    y0 = torch.tensor(COSINE.y0)
    ctrl = PIController(rtol=1e-9, atol=1e-11)
    saveat = [0.5, 2.0, 3.3, 6.0]
    dense = solve(COSINE.f, y0, 0.0, 6.0, solver=solver, controller=ctrl, saveat=saveat)
    landed = solve(COSINE.f, y0, 0.0, 6.0, solver=solver, controller=ctrl, saveat=saveat,
                   land_saveat=True)  # fmt: skip
    assert landed.stats.n_accepted > dense.stats.n_accepted  # landing costs steps
    torch.testing.assert_close(dense.ys, landed.ys, rtol=0, atol=1e-7)


def test_backwards_in_time_interpolates(float64):
    y_end = torch.tensor(LINEAR.exact(2.0, LINEAR.y0))
    saveat = [1.7, 0.9, 0.15]
    sol = solve(LINEAR.f, y_end, 2.0, 0.0, controller=PIController(rtol=1e-10, atol=1e-12),
                saveat=saveat)  # fmt: skip
    exact = np.stack([LINEAR.exact(t, LINEAR.y0) for t in saveat])
    np.testing.assert_allclose(sol.ys.numpy(), exact, atol=1e-8)


# The adjoints differentiate the exact solution, so they are checked at tight tolerances only
# (on a coarse fixed step they are O(h^4) from the discrete gradient that backprop gives).
_CASES = {
    "rk4-backprop": (RK4(), ConstantStepSize(0.25), Backprop()),
    **{
        f"{name}-{type(g).__name__}": (solver, ctrl, g)
        for name, solver, ctrl in (
            ("bosh3", Bosh3(), PIController(rtol=1e-7, atol=1e-7)),
            ("tsit5", Tsit5(), PIController(rtol=1e-9, atol=1e-9)),
        )
        for g in (Backprop(), Adjoint(), InterpolatingAdjoint())
    },
}


@pytest.mark.parametrize("case", _CASES)
def test_gradcheck_through_interpolated_saves(case, float64):
    # Backprop differentiates the interpolation itself (exactly, to finite differences); the
    # adjoints the exact solution (also to finite differences at these tolerances).
    solver, controller, gradient = _CASES[case]
    field = MLPField(2, 4, scale=1.5, seed=3)
    y0 = torch.randn(2, 2, generator=torch.Generator().manual_seed(3), requires_grad=True)
    saveat = [0.1, 0.6, 0.9, 1.3]

    def fn(y0, *params):
        return solve(field, y0, 0.0, 1.3, solver=solver, controller=controller,
                     gradient=gradient, saveat=saveat).ys  # fmt: skip

    assert torch.autograd.gradcheck(fn, (y0, *field.parameters()), eps=1e-6, atol=1e-6)


def test_replay_through_interpolated_saves(float64):
    # Second-order gradients (create_graph) replay the steps and the interpolation.
    field = MLPField(2, 4, scale=1.5, seed=4)
    y0 = torch.randn(3, 2, generator=torch.Generator().manual_seed(4), requires_grad=True)

    def fn(y0, *params):
        return solve(field, y0, 0.0, 1.0, solver=RK4(), controller=ConstantStepSize(0.3),
                     saveat=[0.1, 0.45, 0.95]).ys  # fmt: skip

    assert torch.autograd.gradgradcheck(fn, (y0, *field.parameters()), eps=1e-6, atol=1e-6)


def test_time_gradients_of_solve(float64):
    # dL/dsaveat_i = g_i . f(s_i, y_i), dL/dt1 = g . f(t1, y1), dL/dt0 = -dL/dy0 . f(t0, y0),
    # against finite differences of the solve.
    y0 = torch.tensor(COSINE.y0)
    ctrl = PIController(rtol=1e-11, atol=1e-12)
    for gradient in (Backprop(), Adjoint(), InterpolatingAdjoint()):
        t0 = torch.tensor(0.2, requires_grad=True)
        t1 = torch.tensor(1.5, requires_grad=True)
        s = torch.tensor([0.4, 0.9, 1.4], requires_grad=True)

        def fn(t0, t1, s, gradient=gradient):
            a = solve(COSINE.f, y0, t0, t1, controller=ctrl, gradient=gradient).ys
            b = solve(COSINE.f, y0, t0, t1, controller=ctrl, gradient=gradient, saveat=s).ys
            return (a**2).sum() + b.sum()

        assert torch.autograd.gradcheck(fn, (t0, t1, s), eps=1e-6, atol=1e-6)
