"""`pyanode.odeint` / `odeint_adjoint`: representative cases of torchdiffeq's own test suite
(accuracy on exact problems forwards and backwards in time, gradient checks, adjoint against
backprop, jump_t, perturb, grid_constructor, tuple states, adjoint_params), written against
pyanode, and direct comparisons with torchdiffeq on the same problems."""

from __future__ import annotations

import functools

import pytest
import torch
import torchdiffeq
from problems import TORCHDIFFEQ_PROBLEMS, torchdiffeq_problem

from pyanode import SolverError, odeint, odeint_adjoint

ADAPTIVE = ("dopri5", "tsit5", "bosh3")
FIXED = ("euler", "midpoint", "rk4")
ODEINTS = {"odeint": odeint, "odeint_adjoint": odeint_adjoint}


def _rel(true, estimate):
    return ((true - estimate) / true).abs().max().item()


# ---- accuracy (torchdiffeq's TestSolverError) ----------------------------------------------


@pytest.mark.parametrize("reverse", (False, True), ids=("forwards", "backwards"))
@pytest.mark.parametrize("dtype", (torch.float32, torch.float64), ids=("f32", "f64"))
@pytest.mark.parametrize("method", (*ADAPTIVE, *FIXED))
def test_exact_problems(method, dtype, reverse):
    # torchdiffeq's thresholds: the adaptive methods on every problem at the default tolerances
    # (bosh3 4e-3), the fixed-step ones on the constant problem, which they solve exactly.
    problems = TORCHDIFFEQ_PROBLEMS if method in ADAPTIVE else ("constant",)
    for name in problems:
        func, y0, t, exact = torchdiffeq_problem(name, reverse=reverse, dtype=dtype)
        y = odeint(func, y0, t, method=method)
        assert y.shape == exact.shape and y.dtype == dtype
        eps = 4e-3 if method == "bosh3" else {"linear": 2e-3, "exp": 5e-2}.get(name, 3e-4)
        assert _rel(exact, y) < eps, name


@pytest.mark.parametrize("reverse", (False, True), ids=("forwards", "backwards"))
@pytest.mark.parametrize("name", TORCHDIFFEQ_PROBLEMS)
def test_adjoint_exact_problems(name, reverse):
    func, y0, t, exact = torchdiffeq_problem(name, reverse=reverse)
    y = odeint_adjoint(func, y0, t)
    assert _rel(exact, y) < (2e-3 if name == "linear" else 1e-4)


@pytest.mark.parametrize("name", TORCHDIFFEQ_PROBLEMS)
def test_no_integration(name):
    # A single output time: the initial state itself.
    func, y0, t, exact = torchdiffeq_problem(name)
    for method in (*ADAPTIVE, *FIXED):
        y = odeint(func, y0, t[:1], method=method)
        assert y.shape == (1, *y0.shape)
        assert (y[0] - exact[0]).abs().max() < 1e-12


# ---- gradients (torchdiffeq's TestGradient) ------------------------------------------------


@pytest.mark.parametrize("which", ODEINTS)
@pytest.mark.parametrize("method", (*ADAPTIVE, *FIXED))
def test_gradcheck_y0_and_t(which, method):
    # Finite differences in float64 against the gradients w.r.t. y0 and every output time.
    func, y0, t, _ = torchdiffeq_problem("constant")
    t = t.clone().requires_grad_()
    solve = ODEINTS[which]

    def fn(y0, t):
        return solve(func, y0, t, method=method)

    assert torch.autograd.gradcheck(fn, (y0, t))


@pytest.mark.parametrize("t_grad", (False, True), ids=("", "t-grad"))
@pytest.mark.parametrize("name", TORCHDIFFEQ_PROBLEMS)
def test_adjoint_against_backprop(name, t_grad):
    # torchdiffeq's thresholds for the same comparison at rtol=1e-9, atol=1e-12.
    eps = {"constant": 1e-12, "linear": 1e-5, "sine": 5e-3, "exp": 1e-2}[name]
    grads = []
    for solve in (odeint, odeint_adjoint):
        func, y0, t, _ = torchdiffeq_problem(name)
        t.requires_grad_(t_grad)
        ys = solve(func, y0, t, rtol=1e-9, atol=1e-12)
        weights = torch.rand(ys.shape, generator=torch.Generator().manual_seed(0), dtype=ys.dtype)
        wrt = (y0, *((t,) if t_grad else ()), *func.parameters())
        grads.append(torch.autograd.grad((ys * weights).sum(), wrt))
    for a, b in zip(*grads, strict=True):
        assert (a - b).abs().max() < eps


class _Cubic(torch.nn.Module):
    """torchdiffeq's comparison problem: y' = y^3 A over [0, 25], with a module it never uses."""

    def __init__(self):
        super().__init__()
        self.A = torch.nn.Parameter(torch.tensor([[-0.1, 2.0], [-2.0, -0.1]]))
        self.unused = torch.nn.Linear(2, 5)

    def forward(self, t, y):
        return torch.mm(y**3, self.A)


@pytest.mark.parametrize("t_grad", (False, True), ids=("", "t-grad"))
def test_adjoint_against_dopri5_backprop(t_grad, float64):
    grads = []
    weights = torch.rand(10, 1, 2, generator=torch.Generator().manual_seed(1)) * 0.1
    for solve in (odeint_adjoint, odeint):
        func = _Cubic()
        y0 = torch.tensor([[2.0, 0.0]], requires_grad=True)
        t = torch.linspace(0.0, 25.0, 10, requires_grad=t_grad)
        ys = solve(func, y0, t, method="dopri5")
        (ys * weights).sum().backward()
        unused = func.unused.weight.grad  # never used: no gradient (zeros from the full norm)
        assert unused is None or unused.abs().max() == 0
        grads.append((y0.grad, t.grad, func.A.grad))
    (y_adj, t_adj, a_adj), (y_bp, t_bp, a_bp) = grads
    assert (y_adj - y_bp).abs().max() < 3e-4
    assert (a_adj - a_bp).abs().max() < 2e-3
    if t_grad:
        assert (t_adj - t_bp).abs().max() < 1e-4


@pytest.mark.parametrize("which", ODEINTS)
def test_gradients_against_torchdiffeq(which, float64):
    # The same problem through both libraries: y0, t and parameter gradients agree to the
    # tolerance (pyanode's t gradients are those of the exact solution, torchdiffeq's backprop
    # differentiates its steps: both converge to the same values).
    ours, theirs = ODEINTS[which], getattr(torchdiffeq, which)
    out = []
    for solve in (ours, theirs):
        func = _Cubic()
        y0 = torch.tensor([[1.0, 0.0]], requires_grad=True)
        t = torch.linspace(0.0, 2.0, 5, requires_grad=True)
        ys = solve(func, y0, t, rtol=1e-10, atol=1e-10)
        out.append((ys, *torch.autograd.grad((ys**2).sum(), (y0, t, func.A))))
    for a, b in zip(*out, strict=True):
        torch.testing.assert_close(a, b, rtol=1e-6, atol=1e-7)


# ---- the same numbers as torchdiffeq ---------------------------------------------------------


@pytest.mark.parametrize("method", FIXED)
@pytest.mark.parametrize("step_size", (None, 0.05), ids=("grid=t", "step_size"))
def test_fixed_step_methods_reproduce_torchdiffeq(method, step_size, float64):
    # Same grid, same method (torchdiffeq's rk4 is the 3/8 rule, and so is odeint's "rk4"):
    # the same numbers to round-off at output times on the grid.
    func = _Cubic()
    y0 = torch.tensor([[1.0, 0.0]])
    t = torch.linspace(0.0, 2.0, 11)
    options = None if step_size is None else {"step_size": step_size}
    ours = odeint(func, y0, t, method=method, options=options)
    theirs = torchdiffeq.odeint(func, y0, t, method=method, options=options)
    torch.testing.assert_close(ours, theirs, rtol=0, atol=1e-13)


def test_classical_rk4_is_not_torchdiffeqs(float64):
    # ... and the check can fail: pyanode's classical RK4 differs from the 3/8 rule.
    from pyanode.solvers import RK4, ConstantStepSize, solve

    func, y0, t = _Cubic(), torch.tensor([[1.0, 0.0]]), torch.linspace(0.0, 2.0, 11)
    classic = solve(func, y0, 0.0, 2.0, solver=RK4(), controller=ConstantStepSize(0.2), saveat=t).ys
    theirs = torchdiffeq.odeint(func, y0, t, method="rk4")
    assert (classic - theirs).abs().max() > 1e-6


@pytest.mark.parametrize("method", ("dopri5", "bosh3"))
def test_adaptive_close_to_torchdiffeq_and_to_the_exact_solution(method, float64):
    # Different last steps (pyanode never steps past t1) and interpolants: not the same
    # numbers, but both within the tolerance of the exact solution, pyanode no worse.
    func, y0, t, exact = torchdiffeq_problem("sine")
    ours = odeint(func, y0, t, method=method, rtol=1e-6, atol=1e-8)
    theirs = torchdiffeq.odeint(func, y0, t, method=method, rtol=1e-6, atol=1e-8)
    assert _rel(exact, ours) <= 2 * _rel(exact, theirs) + 1e-9


# ---- discontinuities and grids (torchdiffeq's TestDiscontinuities, TestGridConstructor) ------


class _Jump:
    """y' = -y/2 before t = 0.5, y^2 after; counts its evaluations."""

    def __init__(self):
        self.nfe = 0
        self.ts: list[float] = []

    def __call__(self, t, y):
        self.nfe += 1
        self.ts.append(float(t))
        return -0.5 * y if t < 0.5 else y**2


@pytest.mark.parametrize("which", ODEINTS)
@pytest.mark.parametrize("dtype", (torch.float32, torch.float64), ids=("f32", "f64"))
@pytest.mark.parametrize("method", ADAPTIVE)
def test_jump_t_saves_evaluations(method, dtype, which):
    solve = ODEINTS[which]
    y0 = torch.tensor([1.0, 2.0], dtype=dtype, requires_grad=True)
    t = torch.tensor([0.0, 1.0])
    plain, told = _Jump(), _Jump()
    ys_plain = solve(plain, y0, t, rtol=1e-6, atol=1e-6, method=method)
    options = {"jump_t": torch.tensor([0.5])}
    ys_told = solve(told, y0, t, rtol=1e-6, atol=1e-6, method=method, options=options)
    assert told.nfe < plain.nfe
    assert 0.5 not in told.ts  # f is never evaluated on the jump
    # y(1): y(0.5) = y0 e^{-1/4}, then y' = y^2: y(1) = 1 / (1 / y(0.5) - 0.5)
    half = y0.detach().double() * torch.exp(torch.tensor(-0.25, dtype=torch.float64))
    exact = 1.0 / (1.0 / half - 0.5)
    # rtol = 1e-6 reached to ~20x (measured: 2e-6 dopri5/tsit5, 5e-6 bosh3; 2e-5 in float32)
    tol = 1e-4 if dtype == torch.float32 else 2e-5
    assert _rel(exact, ys_told[-1].double()) < tol
    if which == "odeint_adjoint":
        plain.nfe = told.nfe = 0
        ys_plain.sum().backward()
        ys_told.sum().backward()
        assert told.nfe < plain.nfe


@pytest.mark.parametrize("which", ODEINTS)
@pytest.mark.parametrize("method", FIXED)
@pytest.mark.parametrize("perturb", (True, False))
def test_perturb_keeps_evaluations_off_the_grid(perturb, method, which):
    solve = ODEINTS[which]
    x0 = torch.tensor([1.0, 2.0], requires_grad=True)
    ts: list[float] = []

    def f(t, x):
        ts.append(t.item())
        return -x

    xs = solve(f, x0, torch.tensor([0.0, 1.0]), method=method,
               options={"step_size": 0.5, "perturb": perturb})  # fmt: skip
    assert (0.0 in ts, 0.5 in ts) == (not perturb, not perturb)
    if which == "odeint_adjoint":
        ts.clear()
        xs.sum().backward()
        assert (1.0 in ts, 0.5 in ts) == (not perturb, not perturb)


@pytest.mark.parametrize("which", ODEINTS)
def test_grid_constructor(which):
    calls = []

    def grid(func, y0, t):
        calls.append(t.tolist())
        return torch.linspace(0, 1, 11)

    x0 = torch.tensor(1.0, requires_grad=True)
    xs = ODEINTS[which](lambda t, x: x, x0, torch.tensor([0.0, 1.0]), method="euler",
                        options={"grid_constructor": grid})  # fmt: skip
    assert calls == [[0.0, 1.0]]  # called once; the adjoint lands on the same grid backwards
    assert abs(xs[1].item() - 1.1**10) < 1e-6  # ten Euler steps of 0.1
    xs[1].backward()
    assert abs(x0.grad.item() - 1.1**10) < 1e-6


@pytest.mark.parametrize("option", ("step_t", "grid_points"))
def test_step_t_lands_on_a_kink(option, float64):
    # y' = -(1 + 5 (t - 0.3)_+) y: f continuous, its t-derivative jumps at 0.3 (a kink).
    ts: list[float] = []

    def f(t, y):
        ts.append(float(t))
        return -(1.0 + 5.0 * torch.clamp(t - 0.3, min=0.0)) * y

    y0 = torch.tensor([1.0])
    t = torch.tensor([0.0, 1.0])
    plain = odeint(f, y0, t, rtol=1e-8, atol=1e-8)
    n_plain = len(ts)
    ts.clear()
    landed = odeint(f, y0, t, rtol=1e-8, atol=1e-8, options={option: torch.tensor([0.3])})
    assert 0.3 in ts and len(ts) < n_plain  # a step ends on it: fewer rejected steps
    exact = torch.exp(torch.tensor(-1.0 - 2.5 * 0.7**2))
    assert abs(landed[-1].item() - exact) < 1e-7 and abs(plain[-1].item() - exact) < 1e-7


# ---- tuple states ----------------------------------------------------------------------------


class _TupleField(torch.nn.Module):
    """A damped oscillator split over a tuple: (x (B, 1), v (B, 1)), with a learned damping."""

    def __init__(self):
        super().__init__()
        self.damping = torch.nn.Parameter(torch.tensor(0.3))

    def forward(self, t, state):
        x, v = state
        return v, -x - self.damping * v


def test_tuple_state_matches_torchdiffeq(float64):
    out = []
    for solve in (odeint, torchdiffeq.odeint):
        func = _TupleField()
        x0 = torch.tensor([[1.0], [0.5]], requires_grad=True)
        v0 = torch.zeros(2, 1, requires_grad=True)
        t = torch.linspace(0.0, 3.0, 7)
        xs, vs = solve(func, (x0, v0), t, rtol=1e-10, atol=1e-10)
        assert xs.shape == (7, 2, 1) and vs.shape == (7, 2, 1)
        loss = (xs**2).sum() + vs.sum()
        out.append((xs, vs, *torch.autograd.grad(loss, (x0, v0, func.damping))))
    for a, b in zip(*out, strict=True):
        torch.testing.assert_close(a, b, rtol=1e-7, atol=1e-8)


def test_tuple_per_component_tolerances(float64):
    # A loose tolerance on the first component and a tight one on the second: the error of
    # each follows its own tolerance (torchdiffeq's tupled rtol/atol).
    func = _TupleField()
    y0 = (torch.tensor([[1.0]]), torch.tensor([[0.0]]))
    t = torch.linspace(0.0, 5.0, 6)
    exact = odeint(func, y0, t, rtol=1e-12, atol=1e-12)
    loose = odeint(func, y0, t, rtol=1e-3, atol=1e-3)
    mixed = odeint(func, y0, t, rtol=(1e-3, 1e-10), atol=(1e-3, 1e-10))
    err = [(a - b).abs().max().item() for a, b in zip(mixed, exact, strict=True)]
    err_loose = [(a - b).abs().max().item() for a, b in zip(loose, exact, strict=True)]
    # the tight component pulls the steps of both: both far below the loose solve's error
    assert max(err) < 1e-3 * max(err_loose)
    # per component tolerances equal the per-element tensor form
    per_element = (torch.full((1, 1), 1e-3), torch.full((1, 1), 1e-10))
    again = odeint(func, y0, t, rtol=per_element, atol=per_element)
    for a, b in zip(mixed, again, strict=True):
        torch.testing.assert_close(a, b, rtol=0, atol=0)


def test_tuple_state_adjoint_matches_backprop(float64):
    grads = []
    for solve in (odeint, odeint_adjoint):
        func = _TupleField()
        x0 = torch.tensor([[1.0], [-0.5]], requires_grad=True)
        v0 = torch.tensor([[0.2], [0.0]], requires_grad=True)
        xs, vs = solve(func, (x0, v0), torch.linspace(0.0, 2.0, 4), rtol=1e-10, atol=1e-10)
        grads.append(torch.autograd.grad((xs**3).sum() + vs.sum(), (x0, v0, func.damping)))
    for a, b in zip(*grads, strict=True):
        torch.testing.assert_close(a, b, rtol=1e-6, atol=1e-8)


def test_tuple_norm_receives_the_tuple(float64):
    seen = []

    def norm(parts):
        seen.append(tuple(p.shape for p in parts))
        return max(p.abs().max() for p in parts)

    func = _TupleField()
    y0 = (torch.ones(2, 1), torch.zeros(2, 1))
    odeint(func, y0, torch.tensor([0.0, 1.0]), options={"norm": norm})
    assert seen and set(seen) == {((2, 1), (2, 1))}


# ---- adjoint_params ----------------------------------------------------------------------------


def test_adjoint_params_of_a_plain_callable(float64):
    # torchdiffeq needs adjoint_params for a plain callable; pyanode finds them, and with them
    # listed the gradients are the same.
    w = torch.tensor([[-0.5, 1.0], [-1.0, -0.2]], requires_grad=True)
    y0 = torch.tensor([[1.0, 0.0]])
    t = torch.linspace(0.0, 1.0, 3)

    def f(t, y):
        return y @ w

    ref = torch.autograd.grad(odeint(f, y0, t, rtol=1e-10, atol=1e-10).sum(), w)[0]
    for params in (None, (w,), [w]):
        ys = odeint_adjoint(f, y0, t, rtol=1e-10, atol=1e-10, adjoint_params=params)
        torch.testing.assert_close(torch.autograd.grad(ys.sum(), w)[0], ref, rtol=1e-7, atol=0)


def test_adjoint_params_beyond_the_module(float64):
    # A module field that also uses an outside tensor `scale`, listed in adjoint_params.
    func = _Cubic()
    scale = torch.tensor(0.7, requires_grad=True)

    def f(t, y):
        return func(t, y) * scale

    y0 = torch.tensor([[1.0, 0.0]])
    t = torch.linspace(0.0, 1.0, 3)
    loss = odeint(f, y0, t, rtol=1e-10, atol=1e-10).pow(2).sum()
    ref = torch.autograd.grad(loss, (scale, func.A))
    ys = odeint_adjoint(
        f, y0, t, rtol=1e-10, atol=1e-10, adjoint_params=(scale, *func.parameters())
    )
    got = torch.autograd.grad(ys.pow(2).sum(), (scale, func.A))
    for a, b in zip(got, ref, strict=True):
        torch.testing.assert_close(a, b, rtol=1e-6, atol=1e-10)


def test_adjoint_params_used_only_late_are_differentiated(float64):
    # `w` enters only after t = 0.5, where the first evaluation cannot see it: listed in
    # adjoint_params it gets its gradient (y(1) = exp(-0.5) exp(-0.5 w), d/dw = -0.5 y(1)).
    w = torch.tensor(1.5, requires_grad=True)

    def f(t, y):
        return -y * (w if t >= 0.5 else 1.0)

    y0 = torch.tensor([1.0])
    t = torch.tensor([0.0, 1.0])
    options = {"jump_t": torch.tensor([0.5])}
    ys = odeint_adjoint(f, y0, t, rtol=1e-10, atol=1e-10, options=options, adjoint_params=(w,))
    (grad,) = torch.autograd.grad(ys[-1].sum(), w)
    exact = -0.5 * torch.exp(torch.tensor(-0.5 - 0.5 * 1.5))
    assert abs(grad.item() - exact.item()) < 1e-8


def test_seminorm_adjoint_option(float64):
    # adjoint_options={"norm": "seminorm"} (Kidger et al.): no more backward evaluations than
    # torchdiffeq's default full norm, the same gradients to the tolerance.
    func = _Cubic()
    counted = []

    def f(t, y):
        counted.append(1)
        return func(t, y)

    y0 = torch.tensor([[1.5, 0.0]], requires_grad=True)
    t = torch.linspace(0.0, 5.0, 3)
    grads, nfe = [], []
    for options in (None, {"norm": "seminorm"}):
        ys = odeint_adjoint(f, y0, t, rtol=1e-6, atol=1e-6, adjoint_options=options,
                            adjoint_params=tuple(func.parameters()))  # fmt: skip
        counted.clear()
        grads.append(torch.autograd.grad(ys.sum(), (y0, func.A)))
        nfe.append(len(counted))
    assert nfe[1] <= nfe[0]
    for a, b in zip(*grads, strict=True):
        torch.testing.assert_close(a, b, rtol=1e-4, atol=1e-6)


# ---- options and errors ------------------------------------------------------------------------


def _decay(t, y):
    return -y


@pytest.mark.parametrize(
    "kwargs, error, message",
    [
        (dict(method="dopri8"), ValueError, r"method='dopri8' is torchdiffeq's but not in pyanode; "
         r"supported: dopri5, tsit5, bosh3, rk4, euler, midpoint"),
        (dict(method="rk45"), ValueError, r"method='rk45' is not known; supported: dopri5"),
        (dict(options={"min_step": 0.1}), ValueError, r"'min_step' is not supported .* raises "
         r"SolverError"),
        (dict(method="rk4", options={"interp": "cubic"}), ValueError, r"'interp' is not supported"),
        (dict(options={"step_size": 0.1}), ValueError, r"unknown key\(s\) step_size in options of "
         r"the adaptive method 'dopri5'; accepted: dfactor, dtype, first_step"),
        (dict(method="euler", options={"first_step": 0.1}), ValueError, r"unknown key\(s\) "
         r"first_step in options of the fixed-step method 'euler'"),
        (dict(options={"dtype": "float64"}), ValueError, r"options dtype must be a floating "
         r"torch.dtype"),
        (dict(method="euler", options={"step_size": 0.1, "grid_constructor": lambda f, y, t: t}),
         ValueError, r"step_size and grid_constructor exclude each other"),
        (dict(event_fn=lambda t, y: y), ValueError, r"event_fn is not supported"),
        (dict(rtol=0.0), ValueError, r"rtol must be a finite number > 0, got 0\.0"),
        (dict(rtol=torch.ones(3)), ValueError, r"rtol of shape \(3,\) does not broadcast to y0"),
    ],
)  # fmt: skip
def test_refused_arguments(kwargs, error, message):
    with pytest.raises(error, match=message):
        odeint(_decay, torch.ones(2, 2), torch.tensor([0.0, 1.0]), **kwargs)


def test_bad_times_and_states():
    y0 = torch.ones(2)
    with pytest.raises(TypeError, match=r"t must be a 1-D floating-point torch.Tensor"):
        odeint(_decay, y0, [0.0, 1.0])
    with pytest.raises(ValueError, match=r"t must be strictly increasing or strictly decreasing"):
        odeint(_decay, y0, torch.tensor([0.0, 1.0, 0.5]))
    with pytest.raises(TypeError, match=r"y0 must be a tensor or a tuple of tensors"):
        odeint(_decay, [1.0], torch.tensor([0.0, 1.0]))
    with pytest.raises(ValueError, match=r"rtol has 3 entries, but y0 is a tuple of 2"):
        odeint(lambda t, y: y, (y0, y0), torch.tensor([0.0, 1.0]), rtol=(1e-3,) * 3)


def test_adjoint_argument_errors():
    t = torch.tensor([0.0, 1.0])
    with pytest.raises(ValueError, match=r"pass adjoint_options too"):
        odeint_adjoint(_decay, torch.ones(2), t, options={"first_step": 0.1},
                       adjoint_method="bosh3")  # fmt: skip
    with pytest.raises(ValueError, match=r"adjoint_options norm must be 'seminorm' or absent"):
        odeint_adjoint(_decay, torch.ones(2), t, adjoint_options={"norm": max})
    with pytest.raises(ValueError, match=r"adjoint_params must hold tensors, got float"):
        odeint_adjoint(_decay, torch.ones(2), t, adjoint_params=(1.0,))


def test_callbacks_are_refused():
    class WithCallback(torch.nn.Module):
        def forward(self, t, y):
            return -y

        def callback_step(self, t0, y0, dt):
            pass

    with pytest.raises(ValueError, match=r"func has callback_step: pyanode.odeint calls no"):
        odeint(WithCallback(), torch.ones(2), torch.tensor([0.0, 1.0]))


def test_options_that_change_the_solve(float64):
    t = torch.tensor([0.0, 1.0])
    ts: list[float] = []

    def f(t, y):
        ts.append(float(t))
        return -y

    odeint(f, torch.ones(3), t, options={"first_step": 0.125, "dtype": torch.float32})
    assert ts[1] == 0.125 / 5  # dopri5's second stage is at c = 1/5 of the first step
    with pytest.raises(SolverError, match="max_steps"):
        odeint(f, torch.ones(3), t, rtol=1e-12, atol=1e-12, options={"max_num_steps": 3})
    ts.clear()
    odeint(f, torch.ones(3), t, options={"max_step": 0.1})
    assert max(b - a for a, b in zip(ts, ts[1:], strict=False)) <= 0.1 + 1e-12


def test_norm_option_steers_the_steps(float64):
    # A max norm is larger than the RMS norm on the same error: more steps.
    counts = []
    for norm in (None, lambda e: e.abs().max()):
        calls = []

        def f(t, y, calls=calls):
            calls.append(1)
            return -y * torch.arange(1.0, 51.0)

        odeint(f, torch.ones(50), torch.tensor([0.0, 1.0]), rtol=1e-6, atol=1e-6,
               options=None if norm is None else {"norm": norm})  # fmt: skip
        counts.append(len(calls))
    assert counts[1] > counts[0]


def test_decreasing_t_matches_the_reverse_problem(float64):
    # Backwards from t = 2 to 0 with outputs on the way down, against the exact solution.
    func, _, t, exact = torchdiffeq_problem("sine", reverse=True)
    y = odeint(func, exact[0], t, rtol=1e-9, atol=1e-9)
    assert _rel(exact, y) < 1e-7


def test_output_times_do_not_change_the_steps(float64):
    # Dense output: asking for 200 output times costs no evaluation more than asking for two.
    counts = []
    for n in (2, 200):
        calls = []
        odeint(lambda t, y, calls=calls: calls.append(1) or -y * t, torch.ones(3),
               torch.linspace(0.0, 3.0, n))  # fmt: skip
        counts.append(len(calls))
    assert counts[0] == counts[1]


def test_odeint_is_reexported():
    import pyanode

    assert pyanode.odeint is odeint and functools.partial(pyanode.odeint_adjoint)


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")
@pytest.mark.parametrize("which", ODEINTS)
def test_cuda_matches_cpu(which, float64):
    # The state on the GPU, the output times on the CPU (torchdiffeq coerces them too).
    out = []
    for device in ("cpu", "cuda"):
        func = _Cubic().to(device)
        y0 = torch.tensor([[1.0, 0.0]], device=device, requires_grad=True)
        t = torch.linspace(0.0, 2.0, 5, requires_grad=True)
        ys = ODEINTS[which](func, y0, t, rtol=1e-9, atol=1e-9)
        grads = torch.autograd.grad((ys**2).sum(), (y0, t, func.A))
        out.append([x.detach().cpu() for x in (ys, *grads)])
    for a, b in zip(*out, strict=True):
        torch.testing.assert_close(a, b, rtol=1e-7, atol=1e-9)
