"""The problems of the studies: `StudyProblem`, an initial-value problem with a scalar loss of
its end state; the test ODEs (a linear system with a closed form, Lotka–Volterra, Van der Pol);
the Neural ODE problems (a model's flow with its loss, a briefly trained NODE, the model of a
stored run); and the registry `PROBLEMS` of the named ones with `ProblemSource`, the choice of
the command line."""

from __future__ import annotations

import abc
import copy
import math
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from torch import nn

from pyanode._errors import SpecError
from pyanode._validate import call_registered, check_int, check_number
from pyanode.solvers import (
    AbstractGradientMethod,
    AbstractSolver,
    AbstractStepSizeController,
    Backprop,
    Solution,
    solve,
)
from pyanode.specs import ModelSpec, RunSpec, SolverSpec, TrainSpec, setting

_BACKPROP = Backprop()


# -- losses of the end state ----------------------------------------------------------------------
class AbstractLossHead(nn.Module, abc.ABC):
    """Maps the end state `y(t1)` (B, ...) to a scalar loss."""

    @abc.abstractmethod
    def forward(self, y1: torch.Tensor) -> torch.Tensor:
        """The loss of `y1`, a 0-d tensor."""

    @abc.abstractmethod
    def first(self, n: int) -> AbstractLossHead:
        """The head for the first `n` samples of the batch."""


class HalfSquaredNorm(AbstractLossHead):
    """`0.5 * sum(y1**2) / B`: half the squared norm of the end state, averaged over the batch."""

    def forward(self, y1: torch.Tensor) -> torch.Tensor:
        return 0.5 * y1.pow(2).sum() / y1.shape[0]

    def first(self, n: int) -> HalfSquaredNorm:
        return self


class OutputLoss(AbstractLossHead):
    """A Neural ODE's loss: `output_map(y1)` against `targets`, cross-entropy for integer class
    labels, mean squared error for float targets."""

    def __init__(self, output_map: nn.Module, targets: torch.Tensor):
        super().__init__()
        self.output_map = output_map
        self.register_buffer("targets", targets)

    def forward(self, y1: torch.Tensor) -> torch.Tensor:
        out = self.output_map(y1)
        if self.targets.dtype == torch.int64:
            return nn.functional.cross_entropy(out, self.targets)
        return nn.functional.mse_loss(out, self.targets.reshape(out.shape).to(out.dtype))

    def first(self, n: int) -> OutputLoss:
        return OutputLoss(self.output_map, self.targets[:n])


# -- the problem ----------------------------------------------------------------------------------
Exact = Callable[["StudyProblem"], torch.Tensor]


class StudyProblem(nn.Module):
    """An initial-value problem with a scalar loss of its end state, for the solver studies.

    All floating-point tensors are parameters or buffers, so `converted(dtype)` gives the same
    problem in float64 (the references) or any other dtype.

    Arguments:
        name: the name in the tables (a key of `PROBLEMS`, or `run:<folder>`).
        field: the vector field `f(t, y, args)`, an `nn.Module` (the adjoint differentiates its
            parameters).
        inputs: the batch (B, ...) the problem starts from.
        t1: end time (t0 = 0).
        input_map: `inputs -> y(0)` (a Neural ODE's augmentation or input layer); identity if None.
        head: `y(t1) -> loss`; `HalfSquaredNorm` if None.
        control: pass `inputs` as `args` to the field (data-controlled Neural ODE).
        jump_ts: times where the field jumps (stacked Neural ODE), or None.
        exact: the closed-form `y(t1)` as a function of the problem (differentiable with respect
            to its parameters), or None.
        description: one line for the tables and the docs.
        model_spec: the `ModelSpec` of a Neural ODE problem (its field, input map and output
            map in the order of `flat_parameters`), which lets the Julia backend rebuild it;
            None for the test ODEs.
    """

    def __init__(
        self,
        name: str,
        field: nn.Module,
        inputs: torch.Tensor,
        *,
        t1: float,
        input_map: nn.Module | None = None,
        head: AbstractLossHead | None = None,
        control: bool = False,
        jump_ts: tuple[float, ...] | None = None,
        exact: Exact | None = None,
        description: str = "",
        model_spec: ModelSpec | None = None,
    ):
        super().__init__()
        t1 = check_number("StudyProblem t1", t1, low=0, strict_low=True)
        if not isinstance(inputs, torch.Tensor) or inputs.ndim < 2 or inputs.shape[0] < 1:
            shape = tuple(inputs.shape) if isinstance(inputs, torch.Tensor) else inputs
            raise ValueError(f"StudyProblem inputs must be a (B, ...) tensor, got {shape!r}")
        self.name = name
        # Registered in forward order, so that `parameters()` follows the shared flat order
        # of `flat_parameters` (input map, field, output map).
        self.input_map = nn.Identity() if input_map is None else input_map
        self.field = field
        self.head = HalfSquaredNorm() if head is None else head
        self.register_buffer("inputs", inputs)
        self.t1 = float(t1)
        self.control = control
        self.jump_ts = None if jump_ts is None else tuple(float(t) for t in jump_ts)
        self.exact = exact
        self.description = description
        self.model_spec = model_spec

    @property
    def batch(self) -> int:
        """The number of samples B."""
        return int(self.inputs.shape[0])

    @property
    def dtype(self) -> torch.dtype:
        return self.inputs.dtype

    @property
    def device(self) -> torch.device:
        return self.inputs.device

    def y0(self) -> torch.Tensor:
        """The initial state `input_map(inputs)`."""
        return self.input_map(self.inputs)

    def args(self) -> torch.Tensor | None:
        """What the field receives as `args`: the inputs of a data-controlled field, else None."""
        return self.inputs if self.control else None

    def loss(self, y1: torch.Tensor) -> torch.Tensor:
        """The scalar loss of the end state."""
        return self.head(y1)

    def solve(
        self,
        solver: AbstractSolver,
        controller: AbstractStepSizeController,
        gradient: AbstractGradientMethod = _BACKPROP,
        *,
        y0: torch.Tensor | None = None,
        args: Any = None,
    ) -> Solution:
        """Solve from `y0` (default `self.y0()`) to `t1`; `args` replaces `self.args()` when given
        (with `y0`, to solve a part of the batch)."""
        return solve(
            self.field,
            self.y0() if y0 is None else y0,
            0.0,
            self.t1,
            args=self.args() if args is None else args,
            solver=solver,
            controller=controller,
            gradient=gradient,
            jump_ts=None if self.jump_ts is None else list(self.jump_ts),
        )

    def converted(self, dtype: torch.dtype, device: str | torch.device = "cpu") -> StudyProblem:
        """A deep copy with every floating-point tensor in `dtype` on `device`."""
        return copy.deepcopy(self).to(device=device, dtype=dtype)

    def first(self, n: int) -> StudyProblem:
        """A copy of the problem on the first `n` samples of its batch (all if `n >= batch`)."""
        sub = copy.deepcopy(self)
        sub.inputs = sub.inputs[:n].clone()
        sub.head = sub.head.first(n)
        return sub

    def parameter_list(self) -> list[nn.Parameter]:
        """The parameters the gradient study differentiates (all that require grad)."""
        return [p for p in self.parameters() if p.requires_grad]

    def describe(self) -> dict[str, Any]:
        """Plain values describing the problem (for study.json)."""
        return {
            "name": self.name,
            "description": self.description,
            "batch": self.batch,
            "state_shape": list(self.y0().shape[1:]),
            "t1": self.t1,
            "n_parameters": sum(p.numel() for p in self.parameter_list()),
            "has_closed_form": self.exact is not None,
        }


def check_batch(batch: Any) -> None:
    check_int("batch", batch, low=1, error=SpecError)


# -- the test ODEs: vector fields -----------------------------------------------------------------
class LinearField(nn.Module):
    """`dy/dt = A y` for every row y of the batch; `A` is a parameter."""

    def __init__(self, a: torch.Tensor):
        super().__init__()
        self.a = nn.Parameter(a.clone())

    def forward(self, t: torch.Tensor, y: torch.Tensor, args: Any = None) -> torch.Tensor:
        return y @ self.a.T


class LotkaVolterraField(nn.Module):
    """Predator and prey: `x' = alpha x - beta x y`, `y' = delta x y - gamma y`.

    The parameter `theta = (alpha, beta, delta, gamma)`.
    """

    def __init__(self, alpha: float, beta: float, delta: float, gamma: float):
        super().__init__()
        self.theta = nn.Parameter(torch.tensor([alpha, beta, delta, gamma]))

    def forward(self, t: torch.Tensor, y: torch.Tensor, args: Any = None) -> torch.Tensor:
        alpha, beta, delta, gamma = self.theta
        prey, predator = y[:, 0], y[:, 1]
        meet = prey * predator
        return torch.stack([alpha * prey - beta * meet, delta * meet - gamma * predator], dim=1)


class VanDerPolField(nn.Module):
    """The Van der Pol oscillator `x' = v`, `v' = mu (1 - x^2) v - x`; `mu` is a parameter."""

    def __init__(self, mu: float):
        super().__init__()
        self.mu = nn.Parameter(torch.tensor(mu))

    def forward(self, t: torch.Tensor, y: torch.Tensor, args: Any = None) -> torch.Tensor:
        x, v = y[:, 0], y[:, 1]
        return torch.stack([v, self.mu * (1 - x * x) * v - x], dim=1)


# -- the test ODEs --------------------------------------------------------------------------------
def _linear_exact(problem: StudyProblem) -> torch.Tensor:
    a = problem.field.a
    return problem.y0() @ torch.linalg.matrix_exp(a * problem.t1).T


def linear(*, batch: int = 8, t1: float = 2.0, damping: float = 0.1, omega: float = 2.0):
    """`dy/dt = A y`, `A = [[-damping, -omega], [omega, -damping]]`: a damped rotation with the
    closed form `y(t) = expm(A t) y(0)`, started from `batch` points on the unit circle.

    Raises:
        SpecError: if `batch` is not an int >= 1.
    """
    check_batch(batch)
    a = torch.tensor([[-damping, -omega], [omega, -damping]], dtype=torch.float64)
    angles = 2 * math.pi * torch.arange(batch, dtype=torch.float64) / batch
    y0 = torch.stack([torch.cos(angles), torch.sin(angles)], dim=1)
    return StudyProblem(
        "linear",
        LinearField(a),
        y0,
        t1=t1,
        exact=_linear_exact,
        description=f"y' = A y, A = [[-{damping:g}, -{omega:g}], [{omega:g}, -{damping:g}]], "
        f"{batch} points on the unit circle, t1 = {t1:g} (closed form expm)",
    )


def lotka_volterra(
    *,
    batch: int = 8,
    t1: float = 5.0,
    alpha: float = 1.5,
    beta: float = 1.0,
    delta: float = 1.0,
    gamma: float = 3.0,
):
    """The Lotka–Volterra predator–prey system (scipy's `solve_ivp` example parameters), started
    from prey 1, 1.25, ... and predators 1; periodic orbits, no closed form.

    Raises:
        SpecError: if `batch` is not an int >= 1.
    """
    check_batch(batch)
    prey = 1.0 + 0.25 * torch.arange(batch, dtype=torch.float64)
    y0 = torch.stack([prey, torch.ones(batch, dtype=torch.float64)], dim=1)
    return StudyProblem(
        "lotka-volterra",
        LotkaVolterraField(alpha, beta, delta, gamma).double(),
        y0,
        t1=t1,
        description=f"Lotka-Volterra, (alpha, beta, delta, gamma) = ({alpha:g}, {beta:g}, "
        f"{delta:g}, {gamma:g}), {batch} initial states, t1 = {t1:g}",
    )


def van_der_pol(*, batch: int = 8, t1: float = 5.0, mu: float = 1.0):
    """The Van der Pol oscillator with damping `mu` (non-stiff for mu ~ 1), started from
    `batch` points on the circle of radius 2 (near the limit cycle).

    Raises:
        SpecError: if `batch` is not an int >= 1.
    """
    check_batch(batch)
    angles = 2 * math.pi * torch.arange(batch, dtype=torch.float64) / batch
    y0 = 2.0 * torch.stack([torch.cos(angles), torch.sin(angles)], dim=1)
    return StudyProblem(
        "van-der-pol",
        VanDerPolField(mu).double(),
        y0,
        t1=t1,
        description=f"Van der Pol, mu = {mu:g}, {batch} points on the circle of radius 2, "
        f"t1 = {t1:g}",
    )


# -- Neural ODE problems --------------------------------------------------------------------------
def problem_from_model(
    model: nn.Module,
    x: torch.Tensor,
    targets: torch.Tensor,
    *,
    name: str,
    description: str = "",
    model_spec: ModelSpec | None = None,
) -> StudyProblem:
    """The initial-value problem inside a `NeuralODE` on the inputs `x`, with its training loss.

    The problem shares the model's modules (no copy): field, input map and output map.
    `model_spec`, the spec the model was built from, lets the Julia backend rebuild it.

    Raises:
        SpecError: if `model` is not a `NeuralODE` with a plain `ODEBlock` (a ResNet has no ODE;
            an adaptive-depth block has per-sample end times).
    """
    from pyanode.torch import NeuralODE, ODEBlock

    if not isinstance(model, NeuralODE) or not isinstance(model.block, ODEBlock):
        raise SpecError(
            f"model {type(model).__name__} has no single ODE solve to study; "
            "accepted: NeuralODE with an ODEBlock (kinds node, anode, il-node, data-controlled, "
            "chebyshev, fourier, stacked)"
        )
    block = model.block
    jump_ts = None if block.jump_ts is None else tuple(block.jump_ts.tolist())
    return StudyProblem(
        name,
        block.field,
        x,
        t1=block.spec.t1,
        input_map=model.input_map,
        head=OutputLoss(model.output_map, targets),
        control=block.control,
        jump_ts=jump_ts,
        description=description,
        model_spec=model_spec,
    )


def trained_node(
    *,
    kind: str = "node",
    hidden: int = 32,
    activation: str = "tanh",
    augment_dim: int = 0,
    epochs: int = 10,
    lr: float = 1e-2,
    n: int = 1024,
    batch: int = 256,
    solver: str = "dp5",
    rtol: float = 1e-3,
    seed: int = 0,
):
    """A Neural ODE trained briefly on three spheres; the problem is its flow on `batch` points
    of an independent draw (seed + 1000), with its cross-entropy loss.

    Defaults: a NODE of width 32, Adam with lr 1e-2 for 10 epochs on 1024 points, dp5 at
    rtol = atol = 1e-3 with backprop (about 6 s on one CPU core, ~93% training accuracy).

    Raises:
        SpecError: for a model kind without a single ODE solve, or an invalid spec value.
    """
    from pyanode.data import three_spheres
    from pyanode.experiments.runner import TEST_SEED_OFFSET, run

    check_batch(batch)
    spec = RunSpec(
        dataset="three-spheres",
        dataset_kwargs={"n": n, "seed": seed},
        test_fraction=0.0,
        model=ModelSpec(kind=kind, hidden=hidden, activation=activation, augment_dim=augment_dim),
        solver=SolverSpec(solver=solver, rtol=rtol, atol=rtol),
        train=TrainSpec(epochs=epochs, lr=lr, seed=seed),
    )
    fitted = run(spec, progress=False).fitted
    test = three_spheres(n=batch, seed=seed + TEST_SEED_OFFSET)
    acc = fitted.history[-1]["train_acc"] if fitted.history else math.nan
    return problem_from_model(
        fitted.model,
        torch.as_tensor(test.x),
        torch.as_tensor(test.y),
        name="trained-node",
        description=f"{kind} (hidden {hidden}) trained {epochs} epochs on three spheres "
        f"(n={n}, seed {seed}, {solver} rtol {rtol:g}, train acc {acc:.3f}); "
        f"flow of {batch} test points",
        model_spec=spec.model,
    )


def problem_from_run(folder: str | Path, *, batch: int = 256) -> StudyProblem:
    """The Neural ODE of a finished trial folder (`pyanode train --out`, `pyanode.run(spec,
    out)`, a sweep's or a reproduction's trial), on up to `batch` points of its test set (its
    training data when it has none). The model is rebuilt from its spec and stored weights:
    nothing is trained again.

    Raises:
        FileNotFoundError: if `folder` holds no finished trial.
        SpecError: if the trial failed, its model has no single ODE solve, or its backend is
            not torch.
    """
    from pyanode.experiments.runner import load_data, load_fitted
    from pyanode.experiments.store import read_trial

    check_batch(batch)
    folder = Path(folder)
    fitted = load_fitted(folder)
    spec = read_trial(folder).spec
    train_data, test_data = load_data(spec)
    data = test_data if test_data is not None else train_data
    x = torch.as_tensor(data.x[:batch])
    y = torch.as_tensor(data.y[:batch])
    return problem_from_model(
        fitted.model.cpu(),
        x,
        y,
        name=f"run:{folder.name}",
        description=f"{spec.model.kind} of run {str(folder)!r} (stored weights) on "
        f"{len(x)} {'test' if test_data is not None else 'training'} points of {spec.dataset}",
        model_spec=spec.model,
    )


# -- the named problems ---------------------------------------------------------------------------
PROBLEMS: dict[str, Callable[..., StudyProblem]] = {
    "linear": linear,
    "lotka-volterra": lotka_volterra,
    "van-der-pol": van_der_pol,
    "trained-node": trained_node,
}


def load_problem(name: str, **kwargs: Any) -> StudyProblem:
    """The problem registered as `name` in `PROBLEMS`, built with `kwargs`.

    Test ODEs have known behaviour (the linear one a closed form through `expm`); `trained-node`
    is a Neural ODE trained briefly on three spheres; `problem_from_run` loads the model of a
    stored trial instead.

    Raises:
        SpecError: for an unknown name or keyword argument (listing the accepted ones).
    """
    return call_registered(PROBLEMS, "problem", name, kwargs, SpecError)


@dataclass(frozen=True)
class ProblemSource:
    """Which problem a study measures: a named one with its keyword arguments, or the model of
    a finished trial folder (its stored weights, on its test points)."""

    problem: str = setting("trained-node", "named problem", choices=tuple(PROBLEMS),
                           exclusive="source")  # fmt: skip
    run: Path | None = setting(None, "a finished trial folder whose model to study", type=Path,
                               exclusive="source")  # fmt: skip
    problem_option: dict[str, Any] = setting({}, "keyword argument of the problem, e.g. -P "
                                             "batch=64 -P epochs=5", short="-P")  # fmt: skip

    def load(self) -> StudyProblem:
        """The problem.

        Raises:
            SpecError: for an unknown problem or keyword argument.
            FileNotFoundError: for a folder without a finished trial.
        """
        if self.run is not None:
            return problem_from_run(self.run, **self.problem_option)
        return load_problem(self.problem, **self.problem_option)
