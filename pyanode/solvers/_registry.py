"""String names of the solvers, for the CLI and spec boundary only."""

from __future__ import annotations

from pyanode.solvers._bosh3 import Bosh3
from pyanode.solvers._dopri5 import Dopri5
from pyanode.solvers._euler import Euler
from pyanode.solvers._midpoint import Midpoint
from pyanode.solvers._rk4 import RK4
from pyanode.solvers._solver import AbstractSolver
from pyanode.solvers._tsit5 import Tsit5

SOLVERS: dict[str, type[AbstractSolver]] = {
    "euler": Euler,
    "midpoint": Midpoint,
    "rk4": RK4,
    "bosh3": Bosh3,
    "dp5": Dopri5,
    "tsit5": Tsit5,
}


def solver_from_name(name: str) -> AbstractSolver:
    """The solver registered as `name` in `SOLVERS`, e.g. `solver_from_name("dp5") == Dopri5()`.

    **Raises:**

    `ValueError`: if `name` is not a key of `SOLVERS`.
    """
    try:
        return SOLVERS[name]()
    except (KeyError, TypeError):
        raise ValueError(
            f"unknown solver {name!r}; accepted names: {', '.join(map(repr, SOLVERS))}"
        ) from None
