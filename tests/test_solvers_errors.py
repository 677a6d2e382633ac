"""Failures: SolverError for blow-ups, step budgets and NaN; ValueError/TypeError for bad input."""

from __future__ import annotations

import dataclasses
import math
import pickle
import subprocess
import sys
import textwrap

import pytest
import torch
from problems import BLOW_UP, STIFF

from pyanode._errors import SolverError
from pyanode.solvers import (
    RK4,
    Adjoint,
    Backprop,
    Bosh3,
    ConstantStepSize,
    Dopri5,
    Euler,
    PIController,
    Tsit5,
    gradient_from_name,
    solve,
)

ADAPTIVE = (Bosh3(), Dopri5(), Tsit5())


def test_blow_up_raises_near_the_singularity(float64):
    # y' = y^2, y(0) = 1 is singular at t = 1: the steps shrink until they underflow there.
    with pytest.raises(SolverError, match="step size fell below dtmin.*blowing up") as info:
        solve(BLOW_UP.f, torch.tensor(BLOW_UP.y0), 0.0, BLOW_UP.t1)
    err = info.value
    assert err.reason == "dt_underflow"
    assert 0.999 < err.t < 1.0
    assert 0.0 < err.dt < 1e-12
    assert err.nfe > 100
    assert isinstance(err, RuntimeError)


def test_blow_up_float32_raises():
    with pytest.raises(SolverError) as info:
        solve(BLOW_UP.f, torch.ones(1, 1), 0.0, 2.0, solver=Tsit5())
    assert info.value.reason in ("dt_underflow", "nonfinite") and 0.99 < info.value.t <= 1.0


def test_step_cap(float64):
    controller = PIController(rtol=1e-6, atol=1e-6, max_steps=3)
    with pytest.raises(SolverError, match="took max_steps steps.*increase max_steps") as info:
        solve(STIFF.f, torch.tensor(STIFF.y0), 0.0, STIFF.t1, controller=controller)
    assert info.value.reason == "max_steps"
    assert 0.0 < info.value.t < STIFF.t1
    assert info.value.nfe == 2 + 6 * 3  # first stage, initial step selection, 3 steps


def test_step_cap_default_is_finite():
    assert PIController().max_steps == 10_000
    assert ConstantStepSize(0.1).max_steps == 10_000


def test_constant_step_cap_raises_before_stepping(float64):
    calls = []
    controller = ConstantStepSize(0.001, max_steps=100)
    with pytest.raises(SolverError, match=r"needs 1000 steps .* more than max_steps=100"):
        solve(
            lambda t, y, a: calls.append(t) or y,
            torch.ones(1, 1),
            0.0,
            1.0,
            solver=RK4(),
            controller=controller,
        )
    assert calls == []


def _nan_after(t_bad: float):
    def f(t, y, args):
        return torch.where(t > t_bad, torch.full_like(y, math.nan), -y)

    return f


@pytest.mark.parametrize("gradient", (Backprop(), Adjoint()), ids=("backprop", "adjoint"))
def test_nan_from_field_adaptive(gradient, float64):
    with pytest.raises(SolverError, match="NaN") as info:
        solve(_nan_after(0.5), torch.ones(2, 2), 0.0, 1.0, gradient=gradient)
    assert info.value.reason == "nonfinite"
    assert 0.49 < info.value.t <= 0.5


def test_nan_at_the_start(float64):
    f = lambda t, y, args: y * math.nan  # noqa: E731
    with pytest.raises(SolverError, match="initial state") as info:
        solve(f, torch.ones(2, 2), 0.0, 1.0)
    assert info.value.reason == "nonfinite" and info.value.t == 0.0


def test_nan_from_field_fixed_step(float64):
    with pytest.raises(SolverError, match="NaN or infinite") as info:
        solve(
            _nan_after(0.5),
            torch.ones(2, 2),
            0.0,
            1.0,
            solver=Euler(),
            controller=ConstantStepSize(0.1),
        )
    assert info.value.reason == "nonfinite"
    # f(0.5) is fine, f(0.6000000000000001) is NaN: the Euler step starting there fails.
    assert info.value.t == pytest.approx(0.6)


def test_solver_error_pickles():
    err = SolverError("max_steps", 0.25, 1e-3, 42)
    back = pickle.loads(pickle.dumps(err))
    assert (back.reason, back.t, back.dt, back.nfe, str(back)) == (
        "max_steps",
        0.25,
        1e-3,
        42,
        str(err),
    )


def test_solver_error_under_python_O(tmp_path):
    # No `assert` in the failure path: SolverError is raised with assertions stripped too.
    script = textwrap.dedent(
        """
        import torch
        from pyanode._errors import SolverError
        from pyanode.solvers import solve, PIController
        assert False, "this line is stripped by -O"
        try:
            solve(lambda t, y, a: y * y, torch.ones(1, 1), 0.0, 2.0)
        except SolverError as err:
            print("raised", err.reason)
        try:
            solve(lambda t, y, a: -y, torch.ones(1, 1), 0.0, 1.0,
                  controller=PIController(rtol=1e-9, atol=1e-9, max_steps=2))
        except SolverError as err:
            print("raised", err.reason)
        """
    )
    out = subprocess.run(
        [sys.executable, "-O", "-c", script], capture_output=True, text=True, timeout=120
    )
    assert out.returncode == 0, out.stderr
    assert out.stdout.split() == ["raised", "dt_underflow", "raised", "max_steps"]


# ---- ValueError / TypeError at the boundary ----------------------------------------------


@pytest.mark.parametrize(
    "kwargs, message",
    [
        (dict(rtol=0.0), r"PIController rtol must be a finite number > 0, got 0\.0"),
        (dict(rtol=-1e-3), r"rtol must be a finite number > 0, got -0\.001"),
        (dict(rtol=math.nan), r"rtol must be a finite number > 0, got nan"),
        (dict(atol=-1e-6), r"PIController atol must be a finite number >= 0, got -1e-06"),
        (dict(max_steps=0), r"PIController max_steps must be an integer >= 1, got 0"),
        (dict(max_steps=2.5), r"max_steps must be an integer >= 1, got 2\.5 of type float"),
        (dict(safety=1.5), r"safety must be a finite number > 0 and <= 1, got 1\.5"),
        (
            dict(factormin=1.0),
            r"factormin must be below 1 \(a rejected step must shrink\), got 1\.0",
        ),
        (dict(factormin=1.5), r"factormin must be a finite number > 0 and <= 1, got 1\.5"),
        (dict(factormax=0.5), r"factormax must be a finite number > 1"),
        (dict(dt0=0.0), r"dt0 must be a finite number > 0, got 0\.0"),
        (dict(dtmin=-1.0), r"dtmin must be a finite number >= 0"),
    ],
)
def test_pi_controller_validation(kwargs, message):
    with pytest.raises(ValueError, match=message):
        PIController(**kwargs)


@pytest.mark.parametrize("dt", [0.0, -0.1, math.inf])
def test_constant_step_validation(dt):
    with pytest.raises(ValueError, match=r"ConstantStepSize dt must be a finite number > 0, got"):
        ConstantStepSize(dt)
    with pytest.raises(
        ValueError, match=r"ConstantStepSize max_steps must be an integer >= 1, got 0"
    ):
        ConstantStepSize(0.1, max_steps=0)


def test_adaptive_controller_needs_error_estimate():
    with pytest.raises(
        ValueError, match=r"PIController needs a solver with an error estimate, got RK4\(\)"
    ):
        solve(lambda t, y, a: -y, torch.ones(1, 1), solver=RK4())


@pytest.mark.parametrize("bad", [math.nan, math.inf])
def test_non_finite_y0(bad):
    y0 = torch.tensor([[1.0, bad]])
    with pytest.raises(ValueError, match="y0 contains NaN or infinite values"):
        solve(lambda t, y, a: -y, y0)


def test_y0_type():
    with pytest.raises(
        TypeError, match="y0 must be a floating-point torch.Tensor, got torch.int64"
    ):
        solve(lambda t, y, a: -y, torch.ones(2, dtype=torch.int64))
    with pytest.raises(TypeError, match="y0 must be a floating-point torch.Tensor, got list"):
        solve(lambda t, y, a: -y, [1.0])


@pytest.mark.parametrize(
    "saveat, message",
    [
        ([0.5, 0.2], r"saveat must be strictly increasing from t0 to t1, got \[0\.5, 0\.2\]"),
        ([0.2, 0.2], r"saveat must be strictly increasing"),
        ([0.5, 1.5], r"saveat must lie in \[t0, t1\] = \[0\.0, 1\.0\], got 1\.5"),
        ([-0.1], r"saveat must lie in \[t0, t1\]"),
        (torch.zeros(2, 2), r"saveat must be a non-empty 1-D tensor, got shape \(2, 2\)"),
        ([], r"saveat must not be empty"),
        ("abc", r"saveat must be a 1-D tensor or a sequence of floats"),
    ],
)
def test_saveat_validation(saveat, message):
    with pytest.raises(ValueError, match=message):
        solve(lambda t, y, a: -y, torch.ones(1, 1), 0.0, 1.0, saveat=saveat)


def test_saveat_backwards_must_decrease():
    with pytest.raises(ValueError, match=r"strictly decreasing \(t1 < t0\)"):
        solve(lambda t, y, a: -y, torch.ones(1, 1), 1.0, 0.0, saveat=[0.2, 0.5])


def test_jump_ts_validation():
    with pytest.raises(
        ValueError, match=r"jump_ts must lie in \[t0, t1\] = \[0\.0, 1\.0\], got 2\.0"
    ):
        solve(lambda t, y, a: -y, torch.ones(1, 1), jump_ts=[0.5, 2.0])


@pytest.mark.parametrize(
    "kwargs, message",
    [
        (dict(solver="dp5"), r"solver must be an instance of AbstractSolver .* got 'dp5'"),
        (dict(controller=None), r"controller must be an instance of AbstractStepSizeController"),
        (dict(gradient="adjoint"), r"gradient must be an instance of AbstractGradientMethod"),
    ],
)
def test_strategy_types(kwargs, message):
    with pytest.raises(TypeError, match=message):
        solve(lambda t, y, a: -y, torch.ones(1, 1), **kwargs)


def test_times_validation():
    with pytest.raises(ValueError, match=r"t1 must be a finite number, got inf"):
        solve(lambda t, y, a: -y, torch.ones(1, 1), 0.0, math.inf)
    with pytest.raises(ValueError, match=r"jump_ts must not require grad"):
        solve(lambda t, y, a: -y, torch.ones(1, 1), jump_ts=torch.ones(1, requires_grad=True))
    with pytest.raises(TypeError, match=r"the vector field must be callable, got NoneType"):
        solve(None, torch.ones(1, 1))


def test_gradient_registry_errors():
    assert gradient_from_name("adjoint", seminorm=False) == Adjoint(seminorm=False)
    assert gradient_from_name("backprop") == Backprop()
    with pytest.raises(
        ValueError, match=r"gradient='adjiont' is not known; accepted: backprop, adjoint"
    ):
        gradient_from_name("adjiont")
    with pytest.raises(TypeError, match=r"Adjoint seminorm must be True or False, got 'yes'"):
        Adjoint(seminorm="yes")


def test_defaults_are_shared_safely():
    # The default strategy objects are frozen: nobody can change another call's defaults.
    with pytest.raises(AttributeError):
        Dopri5().tableau = None  # type: ignore[misc]
    with pytest.raises(AttributeError):
        PIController().rtol = 1.0  # type: ignore[misc]


def test_user_dtmin(float64):
    # A user dtmin stops the blow-up much earlier than the round-off bound.
    controller = PIController(dtmin=1e-3)
    with pytest.raises(SolverError) as info:
        solve(BLOW_UP.f, torch.tensor(BLOW_UP.y0), 0.0, 2.0, controller=controller)
    assert info.value.reason == "dt_underflow" and info.value.dt < 1e-3 and info.value.t < 0.999


# ---- the minimum step, checked on every step --------------------------------------------


@dataclasses.dataclass(frozen=True)
class _Logged(PIController):
    """A PIController that logs every decision `(accept, h, t)` of the step-size loop."""

    log: list = dataclasses.field(default_factory=list, compare=False)

    def adapt(self, ratio, t, h, dt, state):
        decision = super().adapt(ratio, t, h, dt, state)
        self.log.append((decision[0], h, t))
        return decision


def _decay(t, y, args):
    return -y


@pytest.mark.parametrize("solver", ADAPTIVE, ids=lambda s: type(s).__name__)
def test_dtmin_stops_a_tight_solve(solver, float64):
    # y' = -y at rtol 1e-9 needs steps below 0.1 (dp5: about 0.06); dtmin = 0.1 refuses them.
    # (Before the minimum step was checked on accepted steps, dp5 took 16 steps of mean 0.0625.)
    controller = _Logged(rtol=1e-9, atol=1e-9, dtmin=0.1)
    with pytest.raises(SolverError, match="fell below dtmin") as info:
        solve(_decay, torch.ones(1, 1), 0.0, 1.0, solver=solver, controller=controller)
    assert info.value.reason == "dt_underflow" and info.value.dt < 0.1
    assert controller.log and min(h for _, h, _ in controller.log) >= 0.1
    # ... and without dtmin the same solve takes such steps.
    free = _Logged(rtol=1e-9, atol=1e-9)
    solve(_decay, torch.ones(1, 1), 0.0, 1.0, solver=solver, controller=free)
    assert min(h for accepted, h, _ in free.log[:-1] if accepted) < 0.1


@pytest.mark.parametrize("solver", ADAPTIVE, ids=lambda s: type(s).__name__)
def test_dtmin_checked_after_an_accepted_step(solver, float64):
    # With atol = 0 the error ratio is exactly proportional to 1/rtol: measure the ratio r of a
    # first step of size dtmin, then choose rtol so that this step has ratio 0.8. It is
    # accepted, and the controller asks for less than dtmin next (0.9 * 0.8^(-1/order) < 1):
    # the solve must stop there, after an accepted step.
    dtmin = 0.1
    ratio = _ratio_of_first_step(solver, dtmin)
    controller = _Logged(rtol=1e-9 * ratio / 0.8, atol=0.0, dt0=dtmin, dtmin=dtmin)
    with pytest.raises(SolverError, match="fell below dtmin") as info:
        solve(_decay, torch.ones(1, 1), 0.0, 1.0, solver=solver, controller=controller)
    assert controller.log == [(True, dtmin, dtmin)]  # one accepted step of size dtmin
    assert info.value.reason == "dt_underflow" and info.value.t == dtmin
    assert 0.9 * dtmin < info.value.dt < dtmin


def _ratio_of_first_step(solver, h: float) -> float:
    """The error ratio at rtol = 1e-9, atol = 0 of a first step of size h of y' = -y."""
    ratios = []

    @dataclasses.dataclass(frozen=True)
    class Probe(PIController):
        def adapt(self, ratio, t, h, dt, state):
            ratios.append(ratio)
            return super().adapt(ratio, t, h, dt, state)

    with pytest.raises(SolverError, match="max_steps"):
        solve(
            _decay,
            torch.ones(1, 1),
            0.0,
            1.0,
            solver=solver,
            controller=Probe(rtol=1e-9, atol=0.0, dt0=h, max_steps=1),
        )
    return ratios[0]


def test_float32_stops_where_t_no_longer_advances():
    # y' = y^2 blows up at t = 1. In float32 the times handed to f stop moving below about
    # 4 eps |t|; the loop stops there instead of stepping in place (before: ~5000 evaluations,
    # steps of 1e-15, and thousands of steps at the same float32 time).
    calls = []

    def f(t, y, args):
        calls.append(float(t))
        return y * y

    controller = _Logged(rtol=1e-6, atol=1e-6)
    with pytest.raises(SolverError, match="fell below dtmin") as info:
        solve(f, torch.ones(1, 1), 0.0, 2.0, solver=Bosh3(), controller=controller)
    floor = 4 * torch.finfo(torch.float32).eps * 2.0
    assert info.value.reason == "dt_underflow" and 0.999 < info.value.t < 1.0
    assert info.value.dt < floor <= min(h for _, h, _ in controller.log)
    reached = [torch.tensor(t, dtype=torch.float32).item() for ok, _, t in controller.log if ok]
    assert all(b > a for a, b in zip(reached, reached[1:], strict=False))  # every step moves t
    assert len(calls) < 2000


def _fixed_steps(controller, t0=0.0, t1=1.0, **kwargs):
    return solve(_decay, torch.ones(1, 1), t0, t1, solver=RK4(), controller=controller, **kwargs)


def test_constant_step_below_the_precision_floor():
    # float32 times near 1e6 are 0.0625 apart: a step of 1e-3 cannot move them.
    with pytest.raises(SolverError, match="fell below dtmin") as info:
        _fixed_steps(ConstantStepSize(1e-3), 1e6, 1e6 + 1.0)
    assert info.value.reason == "dt_underflow" and info.value.dt == 1e-3


def test_constant_step_count_is_not_a_list(float64):
    # 10^12 steps are counted, not listed: the error comes at once.
    with pytest.raises(SolverError, match=r"needs 1000000000000 steps"):
        _fixed_steps(ConstantStepSize(1e-12, max_steps=10))


@pytest.mark.parametrize("saveat", ([0.45, 1.0], [0.3, 0.6, 0.9], [0.1 + 1e-12, 0.9999999999]))
def test_constant_step_count_matches_the_steps(saveat, float64):
    # The up-front count equals the steps taken (grid 0, 0.3, 0.6, 0.9, 1 and the save times;
    # grid points within 1e-9 dt of a save time are merged into it).
    n = _fixed_steps(ConstantStepSize(0.3), saveat=saveat).stats.n_accepted
    with pytest.raises(SolverError, match=rf"needs {n} steps"):
        _fixed_steps(ConstantStepSize(0.3, max_steps=n - 1), saveat=saveat)
