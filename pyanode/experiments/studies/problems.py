"""Named initial-value problems for the solver studies.

A `StudyProblem` is `dy/dt = f(t, y, args)`, `y(0) = input_map(inputs)` on `[0, t1]`, with a scalar
loss of `y(t1)`: the forward studies measure the error of `y(t1)`, the gradient study the error of
the loss's gradient with respect to every parameter of the problem. Test ODEs have known
behaviour (the linear one a closed form through `expm`); `trained-node` is a Neural ODE trained
briefly on three spheres, and `problem_from_run` loads the model of a stored run.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from pyanode._errors import SpecError
from pyanode._registry import call_registered
from pyanode.experiments.studies._neural_odes import TEST_SEED_OFFSET as TEST_SEED_OFFSET
from pyanode.experiments.studies._neural_odes import problem_from_model as problem_from_model
from pyanode.experiments.studies._neural_odes import problem_from_run as problem_from_run
from pyanode.experiments.studies._neural_odes import trained_node as trained_node
from pyanode.experiments.studies._problem import AbstractLossHead as AbstractLossHead
from pyanode.experiments.studies._problem import HalfSquaredNorm as HalfSquaredNorm
from pyanode.experiments.studies._problem import OutputLoss as OutputLoss
from pyanode.experiments.studies._problem import StudyProblem as StudyProblem
from pyanode.experiments.studies._test_odes import LinearField as LinearField
from pyanode.experiments.studies._test_odes import LotkaVolterraField as LotkaVolterraField
from pyanode.experiments.studies._test_odes import VanDerPolField as VanDerPolField
from pyanode.experiments.studies._test_odes import linear as linear
from pyanode.experiments.studies._test_odes import lotka_volterra as lotka_volterra
from pyanode.experiments.studies._test_odes import van_der_pol as van_der_pol

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
    return call_registered(PROBLEMS, "problem", name, kwargs, SpecError)
