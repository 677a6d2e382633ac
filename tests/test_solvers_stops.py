"""Landing on saveat and jump times, and integrating backwards in time."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from problems import COSINE, LINEAR, VAN_DER_POL, Recorder, reference

from pyanode.solvers import RK4, Bosh3, ConstantStepSize, Dopri5, Euler, PIController, Tsit5, solve

ADAPTIVE = (Bosh3(), Dopri5(), Tsit5())
TIGHT = PIController(rtol=1e-9, atol=1e-11)


def _tight(solver):
    """Tight tolerances and the error they reach; third-order Bosh3 gets looser ones (speed)."""
    if isinstance(solver, Bosh3):
        return PIController(rtol=1e-7, atol=1e-9), 1e-6
    return TIGHT, 1e-8


@pytest.mark.parametrize("solver", ADAPTIVE, ids=lambda s: type(s).__name__)
def test_saveat_exact_times_and_values(solver, float64):
    saveat = torch.tensor([0.0, 0.1, 0.3333333333333333, 1.0, 1.7, 2.0])
    f = Recorder(LINEAR.f)
    controller, atol = _tight(solver)
    sol = solve(
        f,
        torch.tensor(LINEAR.y0),
        0.0,
        2.0,
        solver=solver,
        controller=controller,
        saveat=saveat,
        land_saveat=True,
    )
    assert sol.ys.shape == (6, *LINEAR.y0.shape)
    torch.testing.assert_close(sol.ts, saveat)
    # The steps land on the save times: f is evaluated at exactly these floats (last stage).
    assert set(saveat.tolist()) <= set(f.ts)
    expected = np.stack([LINEAR.exact(t, LINEAR.y0) for t in saveat.tolist()])
    np.testing.assert_allclose(sol.ys.numpy(), expected, atol=atol)
    torch.testing.assert_close(sol.ys[0], torch.tensor(LINEAR.y0))  # saveat t0 is y0 itself


def test_saveat_nonlinear_against_scipy(float64):
    saveat = [0.5, 2.5, 4.0]
    sol = solve(
        VAN_DER_POL.f, torch.tensor(VAN_DER_POL.y0), 0.0, 5.0, controller=TIGHT, saveat=saveat
    )
    expected = np.stack([reference(VAN_DER_POL, t) for t in saveat])
    np.testing.assert_allclose(sol.ys.numpy(), expected, atol=1e-7)


def test_saveat_constant_step_lands_exactly(float64):
    # Grid 0, 0.3, 0.6, 0.9, 1.0 split by the save time 0.45: 5 steps with RK4.
    f = Recorder(COSINE.f)
    sol = solve(
        f,
        torch.tensor(COSINE.y0),
        0.0,
        1.0,
        solver=RK4(),
        controller=ConstantStepSize(0.3),
        saveat=torch.tensor([0.45, 1.0]),
        land_saveat=True,
    )
    assert sol.stats.n_accepted == 5
    assert 0.45 in f.ts and 1.0 in f.ts
    expected = np.stack([COSINE.y0 * np.exp(np.sin(t)) for t in (0.45, 1.0)])
    np.testing.assert_allclose(sol.ys.numpy(), expected, rtol=1e-4)


class _Piecewise:
    """y' = theta(t) y with theta = 1 on [0, tau) and -2 on [tau, 1]: a jump at tau.

    Records, for every evaluation, t and the piece it used, to check no step straddles tau.
    """

    def __init__(self, tau: float):
        self.tau, self.ts = tau, []

    def __call__(self, t, y, args):
        self.ts.append(float(t))
        return torch.where(t >= self.tau, -2.0, 1.0) * y

    def exact(self, t, y0):
        return y0 * np.exp(min(t, self.tau) - 2.0 * max(t - self.tau, 0.0))


@pytest.mark.parametrize("solver", ADAPTIVE, ids=lambda s: type(s).__name__)
@pytest.mark.parametrize("dtype", (torch.float32, torch.float64))
def test_jump_landed_exactly_adaptive(solver, dtype):
    tau = 0.4
    f = _Piecewise(tau)
    y0 = torch.tensor([[1.0], [-0.5]], dtype=dtype)
    rtol = 1e-8 if dtype == torch.float64 else 1e-5
    controller = PIController(rtol=rtol, atol=rtol)
    sol = solve(
        f,
        y0,
        0.0,
        1.0,
        solver=solver,
        controller=controller,
        jump_ts=torch.tensor([tau], dtype=torch.float64),
    )
    np.testing.assert_allclose(sol.ys.numpy(), f.exact(1.0, y0.numpy()), rtol=20 * rtol)
    tau_ = torch.tensor(tau, dtype=dtype)
    below = float(torch.nextafter(tau_, torch.tensor(-1.0, dtype=dtype)))
    above = float(torch.nextafter(tau_, torch.tensor(2.0, dtype=dtype)))
    # The step ending at the jump evaluates its last stages just below it, the next starts just
    # above it: f is never evaluated on the jump.
    assert below in f.ts and above in f.ts and float(tau_) not in f.ts
    # FSAL is not reused across the jump: one extra evaluation (the first stage after it).
    s = sol.stats
    assert s.nfe_forward == 2 + 1 + (solver.tableau.stages - 1) * (s.n_accepted + s.n_rejected)


def test_jump_no_straddle_fixed_step(float64):
    # RK4 on the grid 0, 0.3, 0.6, 0.9, 1.0 with the jump at 0.45 splitting a step. A step that
    # straddled the jump would be O(dt) wrong; a clean split is O(dt^4) accurate.
    tau = 0.45
    f = _Piecewise(tau)
    y0 = torch.ones(1, 1)
    sol = solve(f, y0, 0.0, 1.0, solver=RK4(), controller=ConstantStepSize(0.3), jump_ts=[tau])
    assert sol.stats.n_accepted == 5
    assert abs(sol.ys.item() - f.exact(1.0, 1.0)) < 1e-3  # measured 5.7e-4
    # Every evaluation of the piece before the jump was below it, those after above it.
    ts = np.array(f.ts)
    assert np.isclose(ts, tau).sum() == 2  # the last stage just below tau, the first just above
    assert tau not in f.ts
    # 4 stages per step, no FSAL: 20 evaluations in all.
    assert sol.stats.nfe_forward == len(ts) == 20


def test_without_jump_declared_fixed_step_straddles(float64):
    # The same problem without jump_ts: the step [0.3, 0.6] straddles the jump and the error is
    # large. This shows the test above can fail.
    tau = 0.45
    f = _Piecewise(tau)
    sol = solve(f, torch.ones(1, 1), 0.0, 1.0, solver=RK4(), controller=ConstantStepSize(0.3))
    assert abs(sol.ys.item() - f.exact(1.0, 1.0)) > 1e-2


@pytest.mark.parametrize("solver", ADAPTIVE, ids=lambda s: type(s).__name__)
def test_backward_in_time(solver, float64):
    # From t0 = 2 back to t1 = 0 reproduces y0 (linear, invertible).
    y_end = LINEAR.exact(2.0, LINEAR.y0)
    saveat = torch.tensor([1.5, 0.5, 0.0])
    f = Recorder(LINEAR.f)
    controller, atol = _tight(solver)
    sol = solve(
        f, torch.tensor(y_end), 2.0, 0.0, solver=solver, controller=controller, saveat=saveat
    )
    np.testing.assert_allclose(sol.ys[-1].numpy(), LINEAR.y0, atol=atol)
    np.testing.assert_allclose(sol.ys[0].numpy(), LINEAR.exact(1.5, LINEAR.y0), atol=atol)
    assert min(f.ts) >= 0.0 and max(f.ts) <= 2.0


def test_backward_constant_steps_with_jump(float64):
    f = _Piecewise(0.45)
    y1 = torch.tensor([[f.exact(1.0, 1.0)]])
    sol = solve(f, y1, 1.0, 0.0, solver=RK4(), controller=ConstantStepSize(0.3), jump_ts=[0.45])
    assert abs(sol.ys.item() - 1.0) < 1e-3  # measured 5.4e-4
    assert sol.stats.n_accepted == 5


def test_euler_single_step_is_the_formula(float64):
    y0 = torch.tensor([[1.0, 2.0]])
    sol = solve(
        lambda t, y, a: y * t + 1.0, y0, 0.5, 0.75, solver=Euler(), controller=ConstantStepSize(1.0)
    )
    torch.testing.assert_close(sol.ys, y0 + 0.25 * (y0 * 0.5 + 1.0))
