"""Named initial-value problems for the solver studies.

A `StudyProblem` is `dy/dt = f(t, y, args)`, `y(0) = input_map(inputs)` on `[0, t1]`, with a scalar
loss of `y(t1)`: the forward studies measure the error of `y(t1)`, the gradient study the error of
the loss's gradient with respect to every parameter of the problem. Test ODEs have known
behaviour (the linear one a closed form through `expm`); `trained-node` is a Neural ODE trained
briefly on three spheres, and `problem_from_run` loads the model of a stored run.
"""

from __future__ import annotations

import abc
import copy
import inspect
import json
import logging
import math
from collections.abc import Callable
from pathlib import Path
from typing import Any

import torch
from torch import nn

from pyanode._errors import SpecError
from pyanode.solvers import (
    AbstractGradientMethod,
    AbstractSolver,
    AbstractStepSizeController,
    Backprop,
    Solution,
    solve,
)
from pyanode.specs import ModelSpec, RunSpec, SolverSpec, TrainSpec

log = logging.getLogger("pyanode")

_BACKPROP = Backprop()


# -- vector fields -------------------------------------------------------------------------------
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


# -- losses of the end state ---------------------------------------------------------------------
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


# -- the problem ---------------------------------------------------------------------------------
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
        if not isinstance(t1, (int, float)) or isinstance(t1, bool) or not t1 > 0:
            raise ValueError(f"StudyProblem t1 must be a number > 0, got {t1!r}")
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


# -- the test ODEs -------------------------------------------------------------------------------
def _linear_exact(problem: StudyProblem) -> torch.Tensor:
    a = problem.field.a
    return problem.y0() @ torch.linalg.matrix_exp(a * problem.t1).T


def linear(*, batch: int = 8, t1: float = 2.0, damping: float = 0.1, omega: float = 2.0):
    """`dy/dt = A y`, `A = [[-damping, -omega], [omega, -damping]]`: a damped rotation with the
    closed form `y(t) = expm(A t) y(0)`, started from `batch` points on the unit circle.

    Raises:
        SpecError: if `batch` is not an int >= 1.
    """
    _check_batch(batch)
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
    _check_batch(batch)
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
    _check_batch(batch)
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


# -- Neural ODEs ---------------------------------------------------------------------------------
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


TEST_SEED_OFFSET = 1000  # the test inputs are an independent draw, as in table1


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
    from pyanode.backends import TorchBackend
    from pyanode.data import three_spheres

    _check_batch(batch)
    model_spec = ModelSpec(kind=kind, hidden=hidden, activation=activation, augment_dim=augment_dim)
    solver_spec = SolverSpec(solver=solver, rtol=rtol, atol=rtol)
    train_spec = TrainSpec(epochs=epochs, lr=lr, seed=seed)
    data = three_spheres(n=n, seed=seed)
    fitted = TorchBackend().fit(model_spec, solver_spec, train_spec, data, progress=False)
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
        model_spec=model_spec,
    )


def problem_from_run(folder: str | Path, *, batch: int = 256) -> StudyProblem:
    """The Neural ODE of a stored run folder (`spec.toml`, `result.json`), on up to `batch`
    points of its test split (its training data when it has none).

    The weights come from the folder's `checkpoint.pt` when there is one; otherwise the run is
    trained again from its spec (training is deterministic on the CPU for a given seed) and the
    final training loss is checked against the stored `result.json`.

    Raises:
        FileNotFoundError: if `folder` has no `spec.toml`.
        SpecError: if the run's model has no single ODE solve, its backend is not torch, or the
            retrained model does not reproduce the stored loss.
    """
    from pyanode.backends import TorchBackend
    from pyanode.experiments._run import load_split
    from pyanode.experiments.checkpoint import CHECKPOINT, load_checkpoint

    _check_batch(batch)
    folder = Path(folder)
    spec_file = folder / "spec.toml"
    if not spec_file.is_file():
        raise FileNotFoundError(
            f"run folder {str(folder)!r} has no spec.toml; pass a folder written by "
            "`pyanode train --out` or `pyanode.run(spec, out)`"
        )
    spec = RunSpec.from_toml(spec_file.read_text(encoding="utf-8"))
    train_data, test_data = load_split(spec)
    backend = TorchBackend()
    checkpoint = folder / CHECKPOINT
    if checkpoint.is_file():
        model = backend.build(spec.model, spec.solver, spec.train, train_data)
        model.load_state_dict(load_checkpoint(checkpoint, spec)["trainer"]["model"])
        source = "checkpoint"
    else:
        log.info("study: %s has no %s; training it again from spec.toml", folder, CHECKPOINT)
        fitted = backend.fit(
            spec.model, spec.solver, spec.train, train_data, test_data, progress=False
        )
        _check_retrained(folder, fitted.history)
        model = fitted.model
        source = "retrained from spec.toml"
    data = test_data if test_data is not None else train_data
    x = torch.as_tensor(data.x[:batch])
    y = torch.as_tensor(data.y[:batch])
    return problem_from_model(
        model.cpu(),
        x,
        y,
        name=f"run:{folder.name}",
        description=f"{spec.model.kind} of run {str(folder)!r} ({source}) on "
        f"{len(x)} {'test' if test_data is not None else 'training'} points of {spec.dataset}",
        model_spec=spec.model,
    )


def _check_retrained(folder: Path, history: list[dict[str, Any]]) -> None:
    result_file = folder / "result.json"
    if not result_file.is_file() or not history:
        return
    stored = json.loads(result_file.read_text(encoding="utf-8")).get("train_loss")
    ours = history[-1].get("train_loss")
    if stored is not None and ours is not None and not math.isclose(ours, stored, rel_tol=1e-5):
        raise SpecError(
            f"run {str(folder)!r} retrained from spec.toml ends with train_loss={ours!r}, but "
            f"result.json has {stored!r}: the run cannot be reproduced here; store a "
            "checkpoint.pt with the weights"
        )


def _check_batch(batch: Any) -> None:
    if isinstance(batch, bool) or not isinstance(batch, int) or batch < 1:
        raise SpecError(f"batch must be an int >= 1, got {batch!r}")


# -- the registry --------------------------------------------------------------------------------
PROBLEMS: dict[str, Callable[..., StudyProblem]] = {
    "linear": linear,
    "lotka-volterra": lotka_volterra,
    "van-der-pol": van_der_pol,
    "trained-node": trained_node,
}


def load_problem(name: str, **kwargs: Any) -> StudyProblem:
    """The problem registered as `name` in `PROBLEMS`, built with `kwargs`.

    Raises:
        SpecError: for an unknown name or keyword argument (listing the accepted ones).
    """
    if name not in PROBLEMS:
        raise SpecError(f"problem {name!r} is not known; accepted: {', '.join(PROBLEMS)}")
    function = PROBLEMS[name]
    accepted = list(inspect.signature(function).parameters)
    unknown = sorted(set(kwargs) - set(accepted))
    if unknown:
        raise SpecError(
            f"problem {name!r} got unknown keyword argument(s) {', '.join(unknown)}; "
            f"accepted: {', '.join(accepted)}"
        )
    return function(**kwargs)
