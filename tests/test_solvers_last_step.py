"""The steps before a stop (`PIController.toward`): never past it, never short of it, no sliver."""

from __future__ import annotations

import itertools

import pytest
import torch
from problems import Recorder

from benchmarks.controller_study import Clip
from pyanode.solvers import Bosh3, Dopri5, PIController, Tsit5, solve
from pyanode.torch import MLPField

ADAPTIVE = (Bosh3(), Dopri5(), Tsit5())


def _rotation(t, y, args):
    return torch.stack([-y[:, 1] * (1 + t), y[:, 0] * (1 + t)], dim=1)


@pytest.mark.parametrize("solver", ADAPTIVE, ids=lambda s: type(s).__name__)
@pytest.mark.parametrize("t1", [0.37, 1.0, 2.9, -1.3])
def test_never_past_the_stop_never_short(solver, t1, float64):
    """Over tolerances and end times (both directions), `f` is only evaluated inside
    `[t0, t1]` and the last step lands on `t1` exactly; with a jump time inside, no step
    crosses it: the evaluations before it are on its side."""
    y0 = torch.tensor([[1.0, 0.0], [0.3, -0.7]])
    lo, hi = min(0.0, t1), max(0.0, t1)
    for tol in (1e-2, 1e-4, 1e-6):
        f = Recorder(_rotation)
        sol = solve(f, y0, 0.0, t1, solver=solver, controller=PIController(rtol=tol, atol=tol))
        assert all(lo <= t <= hi for t in f.ts)
        assert t1 in f.ts  # the last step ends on t1 (its last stage is evaluated there)
        assert float(sol.ts) == t1

        tau = 0.6 * t1
        f = Recorder(_rotation)
        controller = PIController(rtol=tol, atol=tol)
        solve(f, y0, 0.0, t1, solver=solver, controller=controller, jump_ts=[tau])
        side = [(t - tau) * t1 > 0 for t in f.ts]  # evaluated past the jump
        first_past = side.index(True)
        assert all(side[first_past:]), "a step crossed the jump time"
        assert all(lo <= t <= hi for t in f.ts)


def test_toward_leaves_no_sliver():
    """`toward` never goes past the stop, lands exactly when it says so, and a step that
    does not land leaves at least itself to go (so no sliver of a step remains)."""
    controller = PIController()
    floor = 1e-15
    rests = [10.0**k * m for k in range(-3, 2) for m in (1.0, 1.005, 1.05, 1.1, 1.2, 1.9, 2.3)]
    dts = [10.0**k * m for k in range(-3, 2) for m in (0.5, 0.91, 1.0, 1.11)]
    for rest, dt in itertools.product(rests, dts):
        h, lands = controller.toward(rest, dt, floor)
        assert 0 < h <= rest
        if lands:
            assert h == rest
            assert rest <= dt / controller.safety + floor  # the stretch stays within 1/safety
        else:
            assert rest - h >= h - floor
            assert h <= dt / controller.safety  # nor stretched beyond 1/safety
    # the issue's case: a proposal 4 % short of t1 is stretched, 5 % short of half is halved
    assert controller.toward(1.04, 1.0, floor) == (1.04, True)
    assert controller.toward(2.1, 1.0, floor) == (1.05, False)
    # dtmax bounds the stretch
    assert PIController(dtmax=1.0).toward(1.04, 1.0, floor) == (0.52, False)


def test_toward_halves_within_dtmax():
    assert PIController(dtmax=0.5).toward(0.9, 0.5, 0.0) == (0.45, False)
    assert PIController(dtmax=0.5).toward(1.1, 0.5, 0.0) == (0.5, False)


def test_a_stretched_step_saves_the_sliver(float64):
    """y' = 1: the error estimate is zero, each step grows 10-fold. From dt0 = 0.1 on
    [0, 1.13] the second proposal, 1.0, falls 0.03 short of t1: the old rule stepped 1.0 and
    spent a third step on the 0.03 left; the stretch reaches t1 in two steps."""

    def one(t, y, args):
        return torch.ones_like(y)

    y0 = torch.zeros(3, 1)
    old = solve(one, y0, 0.0, 1.13, controller=Clip(dt0=0.1))
    new = solve(one, y0, 0.0, 1.13, controller=PIController(dt0=0.1))
    assert (old.stats.n_accepted, new.stats.n_accepted) == (3, 2)
    assert new.stats.nfe_forward == old.stats.nfe_forward - 6
    torch.testing.assert_close(new.ys, torch.full((3, 1), 1.13))


@pytest.mark.parametrize("saveat", [None, [0.25, 0.5, 1.0]])
def test_issue_18_sliver_case(saveat):
    """Issue 18: batch 8192, width 256 random MLP, Dopri5 at 1e-3: the old rule took 3 steps
    (a sliver of 3 % of t1 left after the second), the stretch takes 2; dense `saveat` does
    not change the steps, and the error against a tight solve stays as small."""
    torch.manual_seed(0)
    field = MLPField(2, 256)
    z0 = torch.randn(8192, 2)
    with torch.no_grad():
        old = solve(field, z0, 0.0, 1.0, controller=Clip(), saveat=saveat)
        new = solve(field, z0, 0.0, 1.0, controller=PIController(), saveat=saveat)
        ref = solve(field, z0, 0.0, 1.0, controller=PIController(rtol=1e-7, atol=1e-7))
    assert (old.stats.n_accepted, new.stats.n_accepted) == (3, 2)
    assert new.stats.n_rejected == 0
    assert new.stats.nfe_forward == 14

    def error(sol):
        y1 = sol.ys if saveat is None else sol.ys[-1]
        return float((y1 - ref.ys).norm() / ref.ys.norm())

    assert error(new) < 2 * error(old)
