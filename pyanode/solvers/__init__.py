"""The torch backend's ODE solvers: explicit Runge–Kutta methods, step-size control, gradients.

One entry point, `solve(f, y0, t0, t1, *, args, solver, controller, gradient, saveat, jump_ts)`;
every "how" is an object: a solver (`Dopri5()`, ...), a step-size controller
(`PIController(rtol, atol)`, `ConstantStepSize(dt)`) and a gradient method (`Backprop()`,
`Adjoint()`, `InterpolatingAdjoint()`); `odeint`/`odeint_adjoint` take torchdiffeq's
arguments and solve through `solve`. The registries `SOLVERS` and `GRADIENTS` map the names
used in specs and on the command line to these classes. A vector field may implement
`AbstractFusedField` to hand the solver its own stage kernel (`pyanode.torch.MLPField` does);
any other field is evaluated and differentiated through autograd, one evaluation at a time.
Layout: docs/architecture.md.
"""

from pyanode.solvers._adjoint import Adjoint as Adjoint
from pyanode.solvers._adjoint import InterpolatingAdjoint as InterpolatingAdjoint
from pyanode.solvers._backprop import Backprop as Backprop
from pyanode.solvers._controller import AbstractStepSizeController as AbstractStepSizeController
from pyanode.solvers._controller import ConstantStepSize as ConstantStepSize
from pyanode.solvers._controller import PIController as PIController
from pyanode.solvers._kernel import AbstractFusedField as AbstractFusedField
from pyanode.solvers._kernel import AbstractStageKernel as AbstractStageKernel
from pyanode.solvers._methods import RK4 as RK4
from pyanode.solvers._methods import RK38 as RK38
from pyanode.solvers._methods import Bosh3 as Bosh3
from pyanode.solvers._methods import Dopri5 as Dopri5
from pyanode.solvers._methods import Euler as Euler
from pyanode.solvers._methods import Midpoint as Midpoint
from pyanode.solvers._methods import Tsit5 as Tsit5
from pyanode.solvers._odeint import odeint as odeint
from pyanode.solvers._odeint import odeint_adjoint as odeint_adjoint
from pyanode.solvers._problem import AbstractGradientMethod as AbstractGradientMethod
from pyanode.solvers._problem import Solution as Solution
from pyanode.solvers._problem import SolverStats as SolverStats
from pyanode.solvers._problem import field_shape as field_shape
from pyanode.solvers._solve import GRADIENTS as GRADIENTS
from pyanode.solvers._solve import SOLVERS as SOLVERS
from pyanode.solvers._solve import gradient_from_name as gradient_from_name
from pyanode.solvers._solve import solve as solve
from pyanode.solvers._solve import solver_from_name as solver_from_name
from pyanode.solvers._tableau import AbstractSolver as AbstractSolver
from pyanode.solvers._tableau import ButcherTableau as ButcherTableau
