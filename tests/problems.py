"""ODE problems with exact solutions (or a numpy right-hand side for scipy references)."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import scipy.linalg
import torch

import pyanode.torch
from pyanode.solvers import RK4, Bosh3, ConstantStepSize, Dopri5, Euler, Midpoint, Tsit5

# Every solver, for the tests parametrised over all of them.
ALL_SOLVERS = (Euler(), Midpoint(), RK4(), Bosh3(), Dopri5(), Tsit5())

# A fixed 3x3 matrix with eigenvalues -0.1 +- 2i and -0.5: a damped rotation and a decay.
A = np.array([[-0.1, -2.0, 0.0], [2.0, -0.1, 0.0], [0.0, 0.0, -0.5]])
A[:, 2] += [0.3, 0.0, 0.0]  # couple the decaying mode in; eigenvalues stay the same (triangular)


@dataclass(frozen=True)
class Problem:
    """`dy/dt = f(t, y)` with a batch of initial states `y0` (B, D) on `[t0, t1]`.

    Arguments:
        f: the torch vector field `f(t, y, args)`.
        f_np: the same field for scipy, `f_np(t, y)` on one state (D,).
        exact: `exact(t, y0)` -> `y(t)` as numpy (B, D), or None when there is none.
    """

    name: str
    f: Callable
    f_np: Callable
    y0: np.ndarray
    t0: float
    t1: float
    exact: Callable | None


def _linear_exact(t: float, y0: np.ndarray, t0: float = 0.0) -> np.ndarray:
    return y0 @ scipy.linalg.expm(A * (t - t0)).T


LINEAR = Problem(
    name="linear",
    f=lambda t, y, args: y @ torch.as_tensor(A, dtype=y.dtype).T,
    f_np=lambda t, y: A @ y,
    y0=np.array([[1.0, 0.0, 0.5], [-0.3, 0.8, 1.2]]),
    t0=0.0,
    t1=2.0,
    exact=_linear_exact,
)

# y' = -2 t y: y(t) = y0 exp(-(t^2 - t0^2)).
GAUSSIAN = Problem(
    name="gaussian",
    f=lambda t, y, args: -2.0 * t * y,
    f_np=lambda t, y: -2.0 * t * y,
    y0=np.array([[1.0], [-2.0], [0.3]]),
    t0=0.0,
    t1=2.0,
    exact=lambda t, y0: y0 * np.exp(-(t**2)),
)

# y' = cos(t) y: y(t) = y0 exp(sin t - sin t0).
COSINE = Problem(
    name="cosine",
    f=lambda t, y, args: torch.cos(t) * y,
    f_np=lambda t, y: np.cos(t) * y,
    y0=np.array([[1.0, 0.5], [2.0, -1.0]]),
    t0=0.0,
    t1=6.0,
    exact=lambda t, y0: y0 * np.exp(np.sin(t)),
)


def _van_der_pol_np(t, y, mu=1.0):
    return np.array([y[1], mu * (1 - y[0] ** 2) * y[1] - y[0]])


def _van_der_pol(t, y, args, mu=1.0):
    x, v = y[..., 0], y[..., 1]
    return torch.stack([v, mu * (1 - x**2) * v - x], dim=-1)


VAN_DER_POL = Problem(
    name="van-der-pol",
    f=_van_der_pol,
    f_np=_van_der_pol_np,
    y0=np.array([[2.0, 0.0], [0.5, -1.0]]),
    t0=0.0,
    t1=5.0,
    exact=None,
)


def _lotka_volterra(t, y, args):
    x, z = y[..., 0], y[..., 1]
    return torch.stack([1.5 * x - x * z, -3.0 * z + x * z], dim=-1)


LOTKA_VOLTERRA = Problem(
    name="lotka-volterra",
    f=_lotka_volterra,
    f_np=lambda t, y: np.array([1.5 * y[0] - y[0] * y[1], -3.0 * y[1] + y[0] * y[1]]),
    y0=np.array([[1.0, 1.0], [2.0, 0.5]]),
    t0=0.0,
    t1=4.0,
    exact=None,
)

# y' = y^2, y(0) = 1: y = 1 / (1 - t), singular at t = 1.
BLOW_UP = Problem(
    name="blow-up",
    f=lambda t, y, args: y**2,
    f_np=lambda t, y: y**2,
    y0=np.array([[1.0]]),
    t0=0.0,
    t1=2.0,
    exact=lambda t, y0: 1.0 / (1.0 / y0 - t),
)

# Stiff-ish: y' = -50 (y - cos t).
STIFF = Problem(
    name="stiff",
    f=lambda t, y, args: -50.0 * (y - torch.cos(t)),
    f_np=lambda t, y: -50.0 * (y - np.cos(t)),
    y0=np.array([[0.0]]),
    t0=0.0,
    t1=10.0,
    exact=None,
)

REFERENCE_PROBLEMS = (LINEAR, GAUSSIAN, COSINE, VAN_DER_POL, LOTKA_VOLTERRA)


def reference(problem: Problem, t: float | np.ndarray, t0: float | None = None) -> np.ndarray:
    """y(t) (B, D) for each initial state: the exact solution, else scipy's DOP853 at 1e-12."""
    from scipy.integrate import solve_ivp

    t0 = problem.t0 if t0 is None else t0
    if problem.exact is not None and t0 == problem.t0:
        return problem.exact(t, problem.y0)
    out = []
    for y0 in problem.y0:
        sol = solve_ivp(
            problem.f_np, (t0, t), y0, method="DOP853", rtol=1e-12, atol=1e-12, t_eval=[t]
        )
        out.append(sol.y[:, -1])
    return np.array(out)


# `solve` keywords over which the fused and compiled kernels are compared with autograd
KERNEL_SETTINGS = {
    "dp5": {},
    "saveat": {"saveat": [0.0, 0.3, 1.0]},
    "rk4-fixed": {"solver": RK4(), "controller": ConstantStepSize(0.1)},
    "tsit5-jump": {"solver": Tsit5(), "jump_ts": [0.5], "saveat": [0.5, 1.0]},
    "bosh3": {"solver": Bosh3()},
}


def twisting_field(dim, hidden, *, act, control_dim, time_dependent, dtype=None, seed=0, scale=2.0):
    """pyanode's `MLPField` drawn from `seed` (the global generator left as it was), cast to
    `dtype` if given, its weights times `scale`: a twisting flow, with several steps and
    rejections."""
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        field = pyanode.torch.MLPField(
            dim, hidden, act=act, control_dim=control_dim, time_dependent=time_dependent
        )
    if dtype is not None:
        field = field.to(dtype)
    with torch.no_grad():
        for p in field.parameters():
            p.mul_(scale)
    return field


class Recorder:
    """Wraps a field `f(t, y, args)`, recording every t it is called at (`ts`)."""

    def __init__(self, f):
        self.f, self.ts = f, []

    def __call__(self, t, y, args):
        self.ts.append(float(t))
        return self.f(t, y, args)


class MLPField(torch.nn.Module):
    """A small time-dependent MLP vector field `f(t, y) = W2 tanh(W1 [y, t] + b1) + b2`."""

    def __init__(self, dim: int, width: int, *, scale: float = 1.0, seed: int = 0):
        super().__init__()
        gen = torch.Generator().manual_seed(seed)
        self.lin1 = torch.nn.Linear(dim + 1, width)
        self.lin2 = torch.nn.Linear(width, dim)
        with torch.no_grad():
            for p in self.parameters():
                p.copy_(scale * (torch.rand(p.shape, generator=gen) * 2 - 1) / p.shape[-1] ** 0.5)

    def forward(self, t, y, args=None):
        ty = torch.cat([y, t.expand(y.shape[0], 1)], dim=1)
        out = self.lin2(torch.tanh(self.lin1(ty)))
        return out if args is None else out * args


# ---- torchdiffeq-style problems: func(t, y) modules with y_exact(t), solved on t in [1, 8] ----


class ConstantODE(torch.nn.Module):
    """y' = a + (y - (a t + b))^5, exactly y = a t + b from y(t0) = a t0 + b (parameters a, b)."""

    def __init__(self):
        super().__init__()
        self.a = torch.nn.Parameter(torch.tensor(0.2))
        self.b = torch.nn.Parameter(torch.tensor(3.0))

    def forward(self, t, y):
        return self.a + (y - (self.a * t + self.b)) ** 5

    def y_exact(self, t):
        return self.a * t + self.b


class SineODE(torch.nn.Module):
    """y' = 2 y / t + t^4 sin(2t) - t^2 + 4 t^3 (no parameters), a polynomial-trigonometric y."""

    def forward(self, t, y):
        return 2 * y / t + t**4 * torch.sin(2 * t) - t**2 + 4 * t**3

    def y_exact(self, t):
        return (
            -0.5 * t**4 * torch.cos(2 * t)
            + 0.5 * t**3 * torch.sin(2 * t)
            + 0.25 * t**2 * torch.cos(2 * t)
            - t**3
            + 2 * t**4
            + (np.pi - 0.25) * t**2
        )


class LinearODE(torch.nn.Module):
    """y' = A y on R^dim, A = U - U^T + small symmetric part (seeded), y(t) = expm(A t) 1."""

    def __init__(self, dim: int = 10):
        super().__init__()
        gen = torch.Generator().manual_seed(0)
        u = torch.randn(dim, dim, generator=gen) * 0.1
        self.dim = dim
        self.A = torch.nn.Parameter(2 * u - (u + u.T))

    def forward(self, t, y):
        return (self.A @ y.reshape(self.dim, 1)).reshape(-1)

    def y_exact(self, t):
        a = self.A.detach().double().numpy()
        values = [scipy.linalg.expm(a * float(s)) @ np.ones(self.dim) for s in t.reshape(-1)]
        return torch.tensor(np.stack(values)).to(t)


class ExpODE(torch.nn.Module):
    """y' = -0.1 exp(-0.1 t): y = exp(-0.1 t), a field of t alone."""

    def forward(self, t, y):
        return -0.1 * self.y_exact(t)

    def y_exact(self, t):
        return torch.exp(-0.1 * t)


TORCHDIFFEQ_PROBLEMS = {
    "constant": ConstantODE,
    "linear": LinearODE,
    "sine": SineODE,
    "exp": ExpODE,
}


def torchdiffeq_problem(name: str, *, reverse: bool = False, dtype=torch.float64, n: int = 10):
    """`(func, y0, t, y_exact at t)` of a torchdiffeq-style problem on t in [1, 8]: `y0`
    requires grad, `t` is float64 and, with `reverse`, runs from 8 down to 1."""
    func = TORCHDIFFEQ_PROBLEMS[name]().to(dtype)
    t = torch.linspace(1.0, 8.0, n, dtype=torch.float64)
    if reverse:
        t = t.flip(0)
    with torch.no_grad():
        exact = func.y_exact(t.to(dtype)).to(dtype)
    return func, exact[0].clone().requires_grad_(), t, exact
