"""Accuracy of the solvers: convergence orders, agreement with scipy, NFE accounting, t1."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from problems import ALL_SOLVERS, COSINE, LINEAR, REFERENCE_PROBLEMS, Recorder, reference

from pyanode.solvers import (
    RK4,
    Bosh3,
    ConstantStepSize,
    Dopri5,
    Euler,
    Midpoint,
    PIController,
    Tsit5,
    solve,
)

ADAPTIVE = (Bosh3(), Dopri5(), Tsit5())
# dt = 2^-k for k in these ranges: in the asymptotic regime, above round-off (1e-13).
K_RANGE = {
    Euler: (4, 10),
    Midpoint: (4, 10),
    RK4: (3, 8),
    Bosh3: (3, 9),
    Dopri5: (2, 6),
    Tsit5: (4, 6),
}


def _name(solver):
    return type(solver).__name__


@pytest.mark.parametrize("solver", ALL_SOLVERS, ids=_name)
def test_convergence_order(solver, float64):
    y0 = torch.tensor(LINEAR.y0)
    exact = LINEAR.exact(LINEAR.t1, LINEAR.y0)
    lo, hi = K_RANGE[type(solver)]
    log_dt, log_err = [], []
    for k in range(lo, hi + 1):
        controller = ConstantStepSize(2.0**-k)
        sol = solve(LINEAR.f, y0, LINEAR.t0, LINEAR.t1, solver=solver, controller=controller)
        n_steps = round((LINEAR.t1 - LINEAR.t0) * 2**k)
        assert sol.stats.n_accepted == n_steps
        log_dt.append(-k)
        log_err.append(np.log2(np.abs(sol.ys.numpy() - exact).max()))
    slope = np.polyfit(log_dt, log_err, 1)[0]
    assert abs(slope - solver.order) < 0.25, slope


@pytest.mark.parametrize("problem", REFERENCE_PROBLEMS, ids=lambda p: p.name)
@pytest.mark.parametrize("solver", (Dopri5(), Tsit5()), ids=_name)
def test_adaptive_matches_reference(problem, solver, float64):
    ref = reference(problem, problem.t1)
    errors = []
    for rtol in (1e-4, 1e-6, 1e-8):
        atol = rtol * 1e-2
        controller = PIController(rtol=rtol, atol=atol)
        sol = solve(
            problem.f,
            torch.tensor(problem.y0),
            problem.t0,
            problem.t1,
            solver=solver,
            controller=controller,
        )
        err = np.abs(sol.ys.numpy() - ref)
        # Global error within a small multiple of the local tolerance (measured: at most 15x).
        assert (err <= 20 * (atol + rtol * np.abs(ref))).all(), err.max()
        errors.append(err.max())
    # Tighter tolerances give smaller errors (100x tighter rtol: at least 3x smaller error).
    assert errors[0] > 3 * errors[1] > 9 * errors[2]


@pytest.mark.parametrize("solver", ADAPTIVE, ids=_name)
def test_bosh3_and_friends_reach_tolerance(solver, float64):
    # Bosh3 is less sharp; check all adaptive solvers on the cosine problem at 1e-6.
    ref = reference(COSINE, COSINE.t1)
    controller = PIController(rtol=1e-6, atol=1e-8)
    sol = solve(
        COSINE.f, torch.tensor(COSINE.y0), 0.0, COSINE.t1, solver=solver, controller=controller
    )
    assert np.abs(sol.ys.numpy() - ref).max() < 1e-5


@pytest.mark.parametrize("solver", ALL_SOLVERS, ids=_name)
@pytest.mark.parametrize("t1", (1.0, 0.7, 2.0 / 3.0, 1e-3, -1.3))
def test_never_evaluates_beyond_t1(solver, t1, float64):
    f = Recorder(COSINE.f)
    adaptive = PIController(rtol=1e-5, atol=1e-7)
    controller = adaptive if solver.adaptive else ConstantStepSize(0.03)
    sol = solve(f, torch.tensor(COSINE.y0), 0.0, t1, solver=solver, controller=controller)
    ts = np.array(f.ts)
    if t1 > 0:
        assert ts.max() <= t1 and ts.min() >= 0.0
    else:
        assert ts.min() >= t1 and ts.max() <= 0.0
    assert len(ts) == sol.stats.nfe_forward
    rtol = {1: 5e-2, 2: 1e-2}.get(solver.order, 1e-4)  # Euler: ~2% at dt=0.03
    np.testing.assert_allclose(sol.ys.numpy(), COSINE.y0 * np.exp(np.sin(t1)), rtol=rtol)


@pytest.mark.parametrize("solver", ADAPTIVE, ids=_name)
def test_nfe_formula_shows_fsal(solver, float64):
    # FSAL: every step, accepted or rejected, costs stages - 1 evaluations; plus the first
    # stage at t0 and one evaluation of the initial step selection (none when dt0 is given).
    new_per_step = solver.tableau.stages - 1
    for dt0, extra in ((None, 2), (0.05, 1)):
        f = Recorder(COSINE.f)
        controller = PIController(rtol=1e-6, atol=1e-8, dt0=dt0)
        sol = solve(
            f, torch.tensor(COSINE.y0), 0.0, COSINE.t1, solver=solver, controller=controller
        )
        s = sol.stats
        assert s.n_accepted > 10
        assert s.nfe_forward == len(f.ts) == extra + new_per_step * (s.n_accepted + s.n_rejected)


def test_nfe_accepted_only_dopri5(float64):
    # A smooth problem with no rejections: nfe == 6 * steps + 1 + 1 (initial step selection).
    f = Recorder(lambda t, y, args: -y)
    sol = solve(f, torch.ones(4, 2), 0.0, 1.0, controller=PIController(rtol=1e-7, atol=1e-9))
    assert sol.stats.n_rejected == 0
    assert sol.stats.nfe_forward == len(f.ts) == 6 * sol.stats.n_accepted + 2
    np.testing.assert_allclose(sol.ys.numpy(), np.exp(-1.0), rtol=1e-7)


@pytest.mark.parametrize("solver", ALL_SOLVERS, ids=_name)
def test_constant_step_count(solver, float64):
    # ceil((t1 - t0) / dt) steps, the last one clipped; nfe follows the tableau.
    for dt, n in ((0.1, 10), (0.3, 4), (0.25, 4), (0.4, 3), (2.0, 1)):
        f = Recorder(lambda t, y, args: -y)
        sol = solve(f, torch.ones(2, 2), 0.0, 1.0, solver=solver, controller=ConstantStepSize(dt))
        assert sol.stats.n_accepted == n
        stages = solver.tableau.stages
        expected = 1 + (stages - 1) * n if solver.fsal else stages * n
        assert sol.stats.nfe_forward == len(f.ts) == expected
        assert max(f.ts) <= 1.0


@pytest.mark.parametrize("dtype", (torch.float32, torch.float64))
def test_dtype_follows_y0(dtype):
    seen = []

    def f(t, y, args):
        seen.append((t.dtype, y.dtype, t.shape))
        return -y

    sol = solve(f, torch.ones(3, 2, dtype=dtype), 0.0, 1.0)
    assert sol.ys.dtype == dtype and sol.ts.dtype == dtype
    assert set(seen) == {(dtype, dtype, torch.Size([]))}
    np.testing.assert_allclose(sol.ys.numpy(), np.exp(-1.0), rtol=1e-2)


def test_no_graph_under_no_grad():
    w = torch.nn.Parameter(torch.tensor(-0.5))
    with torch.no_grad():
        sol = solve(lambda t, y, args: w * y, torch.ones(2, 2), 0.0, 1.0)
    assert not sol.ys.requires_grad and sol.ys.grad_fn is None


def test_zero_length_interval():
    calls = []
    y0 = torch.randn(3, 2)
    sol = solve(lambda t, y, a: calls.append(t) or y, y0, 0.5, 0.5, saveat=torch.tensor([0.5]))
    assert calls == [] and sol.stats.nfe_forward == 0
    torch.testing.assert_close(sol.ys, y0[None])


def test_pi_coefficients_change_the_steps(float64):
    # Hairer's PI controller (pcoeff=0.2, icoeff=0.65) reaches the tolerance too, on a different
    # step sequence than the I-controller; the previous error enters the step size.
    from problems import VAN_DER_POL

    ref = reference(VAN_DER_POL, VAN_DER_POL.t1)
    stats = []
    for pcoeff, icoeff in ((0.0, 1.0), (0.2, 0.65)):
        controller = PIController(rtol=1e-6, atol=1e-8, pcoeff=pcoeff, icoeff=icoeff)
        sol = solve(VAN_DER_POL.f, torch.tensor(VAN_DER_POL.y0), 0.0, 5.0, controller=controller)
        np.testing.assert_allclose(sol.ys.numpy(), ref, atol=2e-5)
        stats.append((sol.stats.n_accepted, sol.stats.n_rejected))
    assert stats[0] != stats[1]


def test_dtmax_bounds_the_steps(float64):
    f = lambda t, y, args: -y  # noqa: E731
    loose = solve(f, torch.ones(1, 1), 0.0, 1.0)
    capped = solve(f, torch.ones(1, 1), 0.0, 1.0, controller=PIController(dtmax=0.05))
    assert loose.stats.n_accepted < 10 <= 20 <= capped.stats.n_accepted
