"""`StudyProblem`: an initial-value problem with a scalar loss of its end state, and the losses."""

from __future__ import annotations

import abc
import copy
from collections.abc import Callable
from typing import Any

import torch
from torch import nn

from pyanode._errors import SpecError
from pyanode._validate import check_int
from pyanode.solvers import (
    AbstractGradientMethod,
    AbstractSolver,
    AbstractStepSizeController,
    Backprop,
    Solution,
    solve,
)
from pyanode.specs import ModelSpec

_BACKPROP = Backprop()


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


def check_batch(batch: Any) -> None:
    check_int("batch", batch, low=1, error=SpecError)
