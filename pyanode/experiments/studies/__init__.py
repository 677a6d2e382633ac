"""Solver-accuracy studies: forward and gradient work-precision, train-with-one/test-with-another,
and batch coupling (docs/studies.md).

Each study takes a `StudyProblem` (or trains its models), measures one row per solver setting,
writes a CSV table, `study.json` and a figure under `out`, and returns a `StudyResult`. Errors
are measured against a float64 reference whose convergence is checked on every run.
"""

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from pyanode._errors import SpecError
from pyanode._validate import call_registered
from pyanode.experiments.studies._measure import PeakMemory as PeakMemory
from pyanode.experiments.studies._neural_odes import problem_from_model as problem_from_model
from pyanode.experiments.studies._neural_odes import problem_from_run as problem_from_run
from pyanode.experiments.studies._neural_odes import trained_node as trained_node
from pyanode.experiments.studies._problem import HalfSquaredNorm as HalfSquaredNorm
from pyanode.experiments.studies._problem import OutputLoss as OutputLoss
from pyanode.experiments.studies._problem import StudyProblem as StudyProblem
from pyanode.experiments.studies._reference import ForwardReference as ForwardReference
from pyanode.experiments.studies._reference import GradientReference as GradientReference
from pyanode.experiments.studies._reference import ReferenceNotConverged as ReferenceNotConverged
from pyanode.experiments.studies._reference import forward_reference as forward_reference
from pyanode.experiments.studies._reference import gradient_reference as gradient_reference
from pyanode.experiments.studies._reference import loss_and_gradient as loss_and_gradient
from pyanode.experiments.studies._settings import Setting as Setting
from pyanode.experiments.studies._settings import parse_setting as parse_setting
from pyanode.experiments.studies._tables import StudyResult as StudyResult
from pyanode.experiments.studies._tables import text_table as text_table
from pyanode.experiments.studies._test_odes import LinearField as LinearField
from pyanode.experiments.studies._test_odes import LotkaVolterraField as LotkaVolterraField
from pyanode.experiments.studies._test_odes import VanDerPolField as VanDerPolField
from pyanode.experiments.studies._test_odes import linear as linear
from pyanode.experiments.studies._test_odes import lotka_volterra as lotka_volterra
from pyanode.experiments.studies._test_odes import van_der_pol as van_der_pol
from pyanode.experiments.studies.batch_coupling import BatchCouplingConfig as BatchCouplingConfig
from pyanode.experiments.studies.batch_coupling import batch_coupling_study as batch_coupling_study
from pyanode.experiments.studies.cross_solver import CrossSolverConfig as CrossSolverConfig
from pyanode.experiments.studies.cross_solver import cross_solver_study as cross_solver_study
from pyanode.experiments.studies.gradient_precision import GRADIENT_METHODS as GRADIENT_METHODS
from pyanode.experiments.studies.gradient_precision import GradientConfig as GradientConfig
from pyanode.experiments.studies.gradient_precision import gradient_study as gradient_study
from pyanode.experiments.studies.work_precision import ForwardConfig as ForwardConfig
from pyanode.experiments.studies.work_precision import forward_study as forward_study
from pyanode.experiments.studies.work_precision import measured_order as measured_order
from pyanode.specs import setting

# the named initial-value problems of the studies: name -> function of keyword arguments
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
