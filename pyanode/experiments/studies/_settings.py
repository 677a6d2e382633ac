"""The settings of the studies: their shared config fields and checks, and the solver settings
(a solver with a tolerance, adaptive, or a fixed step).

The tolerance axis of an adaptive solver is `rtol` (with `atol = rtol`); a fixed-step solver's
axis is its step `dt = t1 / steps`.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import torch

from pyanode._errors import SpecError
from pyanode._names import ADAPTIVE_SOLVERS, DEVICES, FIXED_STEP_SOLVERS
from pyanode._names import SOLVERS as SOLVER_NAMES
from pyanode._validate import check_choice, check_int, check_number, check_subset
from pyanode.solvers import (
    SOLVERS,
    AbstractSolver,
    AbstractStepSizeController,
    ConstantStepSize,
    PIController,
    solver_from_name,
)
from pyanode.specs import SolverSpec
from pyanode.specs import setting as option

ADAPTIVE = ADAPTIVE_SOLVERS
ALL_SOLVERS = tuple(SOLVER_NAMES)
FIXED_STEP = FIXED_STEP_SOLVERS
DTYPES = {"float32": torch.float32, "float64": torch.float64}
JULIA_MODES = ("auto", "off", "require")  # rows from the Julia backend: when usable, never, always
TOLERANCES = (1e-3, 1e-4, 1e-5, 1e-6, 1e-7, 1e-8)
STEPS = (4, 8, 16, 32, 64, 128)

# settings that mean the same in several studies: name -> (default, --help text, metadata)
STUDY_SETTINGS: dict[str, tuple[Any, str, dict[str, Any]]] = {
    "solvers": (ALL_SOLVERS, "solver names", {}),
    "tolerances": (TOLERANCES, "rtol = atol of the adaptive solvers", {}),
    "steps": (STEPS, "steps per solve of the fixed-step solvers", {}),
    "dtype": ("float64", "dtype of the solves", {"choices": tuple(DTYPES)}),
    "device": ("cpu", "torch device", {"choices": DEVICES}),
    "repeats": (3, "solves per setting (the fastest is timed)", {}),
    "max_steps": (100_000, "step budget of one solve", {}),
    "reference_rtol": (1e-12, "tolerance of the float64 reference", {}),
    "julia": ("auto", "rows from the Julia backend too: when usable, never, or required",
              {"choices": JULIA_MODES}),
}  # fmt: skip


def study_setting(name: str, default: Any = None) -> Any:
    """The config field of the setting `name` of `STUDY_SETTINGS` (with another default)."""
    value, text, metadata = STUDY_SETTINGS[name]
    return option(value if default is None else default, text, **metadata)


def check_mode(mode: str) -> None:
    """Raise SpecError unless `mode` is a Julia mode of `JULIA_MODES`."""
    check_choice("julia", mode, JULIA_MODES, error=SpecError)


def check_config(config: Any) -> None:
    """The checks every study config shares: dtype, device, repeats, max_steps, the reference's
    tolerance and the Julia mode."""
    check_choice("dtype", config.dtype, DTYPES, error=SpecError)
    check_choice("device", config.device, DEVICES, error=SpecError)
    for name in ("repeats", "max_steps"):
        check_int(name, getattr(config, name), low=1, error=SpecError)
    check_number("reference_rtol", config.reference_rtol, low=1e-14, high=1e-8, error=SpecError)
    check_mode(config.julia)


@dataclass(frozen=True)
class Setting:
    """One solver setting: `solver` with `rtol = atol = tol` when adaptive, or a fixed `dt`.

    Arguments:
        solver: a key of `pyanode.solvers.SOLVERS`.
        tol: the tolerance of an adaptive solver (None for a fixed step).
        dt: the step of a fixed-step solve (None for an adaptive one).
        max_steps: step budget of one solve.

    Raises:
        SpecError: for an unknown solver, neither or both of `tol` and `dt`, a non-positive
            value, or a tolerance for a solver without an error estimate.
    """

    solver: str
    tol: float | None = None
    dt: float | None = None
    max_steps: int = 100_000

    def __post_init__(self) -> None:
        check_choice("solver", self.solver, ALL_SOLVERS, error=SpecError)
        if (self.tol is None) == (self.dt is None):
            raise SpecError(
                f"setting of {self.solver!r} needs exactly one of tol (adaptive) and dt (fixed "
                f"step), got tol={self.tol!r}, dt={self.dt!r}"
            )
        what = "tol" if self.dt is None else "dt"
        check_number(f"setting of {self.solver!r}: {what}", getattr(self, what), low=0,
                     strict_low=True, error=SpecError)  # fmt: skip
        if self.tol is not None and self.solver not in ADAPTIVE:
            raise SpecError(
                f"solver {self.solver!r} has no error estimate, so it takes a fixed step dt, not "
                f"a tolerance; adaptive solvers: {', '.join(ADAPTIVE)}"
            )

    @property
    def adaptive(self) -> bool:
        return self.tol is not None

    @property
    def label(self) -> str:
        """`dp5:1e-06` or `rk4:dt=0.25`: the setting in the tables and on the command line."""
        return f"{self.solver}:{self.tol:g}" if self.adaptive else f"{self.solver}:dt={self.dt:g}"

    def method(self) -> AbstractSolver:
        return solver_from_name(self.solver)

    def controller(self) -> AbstractStepSizeController:
        if self.adaptive:
            return PIController(rtol=self.tol, atol=self.tol, max_steps=self.max_steps)
        return ConstantStepSize(self.dt, max_steps=self.max_steps)

    def solver_spec(self, *, t1: float = 1.0, gradient: str = "backprop") -> SolverSpec:
        """The `SolverSpec` of this setting (for training, or for the Julia backend)."""
        if self.adaptive:
            return SolverSpec(
                solver=self.solver,
                rtol=self.tol,
                atol=self.tol,
                gradient=gradient,
                max_steps=self.max_steps,
                t1=t1,
            )
        return SolverSpec(
            solver=self.solver, dt=self.dt, gradient=gradient, max_steps=self.max_steps, t1=t1
        )

    def columns(self) -> dict[str, object]:
        """The table columns that identify this setting: solver, order, rtol, atol, dt."""
        nan = math.nan
        return {
            "solver": self.solver,
            "order": SOLVERS[self.solver].tableau.order,
            "rtol": self.tol if self.adaptive else nan,
            "atol": self.tol if self.adaptive else nan,
            "dt": self.dt if not self.adaptive else nan,
        }


def parse_setting(text: str, *, max_steps: int = 100_000) -> Setting:
    """`"dp5:1e-3"` (adaptive, rtol = atol = 1e-3) or `"rk4:dt=0.25"` / `"rk4:0.25"` (fixed
    step 0.25) as a `Setting`.

    Raises:
        SpecError: for text not of the form `SOLVER:VALUE` or an invalid setting.
    """
    solver, sep, value = str(text).partition(":")
    fixed = value.startswith("dt=")
    try:
        if not sep:
            raise ValueError
        x = float(value[3:] if fixed else value)
    except ValueError:
        raise SpecError(
            f"solver setting {text!r} must be SOLVER:TOL or SOLVER:dt=STEP (adaptive, e.g. "
            "dp5:1e-3, or fixed step, e.g. rk4:dt=0.25)"
        ) from None
    if fixed or solver in FIXED_STEP:
        return Setting(solver, dt=x, max_steps=max_steps)
    return Setting(solver, tol=x, max_steps=max_steps)


def check_grid(
    solvers: Sequence[str],
    tolerances: Sequence[float],
    steps: Sequence[int],
    *,
    accepted: Sequence[str] = ALL_SOLVERS,
) -> None:
    """Validate a study's solver grid.

    Raises:
        SpecError: for an empty or unknown solver list, a solver outside `accepted`, a
            tolerance not in (0, 1), or a step count that is not an int >= 1.
    """
    check_subset("solvers", solvers, accepted, error=SpecError)
    if any(s in ADAPTIVE for s in solvers) and not tolerances:
        raise SpecError("tolerances must not be empty when an adaptive solver is studied")
    for tol in tolerances:
        check_number("tolerances", tol, low=1e-14, high=1, strict_high=True, error=SpecError)
    if any(s in FIXED_STEP for s in solvers) and not steps:
        raise SpecError("steps must not be empty when a fixed-step solver is studied")
    for n in steps:
        check_int("steps", n, low=1, error=SpecError)


def grid(
    solvers: Sequence[str],
    tolerances: Sequence[float],
    steps: Sequence[int],
    t1: float,
    *,
    max_steps: int = 100_000,
) -> list[Setting]:
    """Every adaptive solver at every tolerance and every fixed-step solver at `dt = t1 / n` for
    each `n` in `steps`, in the order of `solvers`."""
    out = []
    for name in solvers:
        if name in ADAPTIVE:
            out += [Setting(name, tol=float(t), max_steps=max_steps) for t in tolerances]
        else:
            out += [Setting(name, dt=t1 / n, max_steps=max_steps) for n in steps]
    return out
