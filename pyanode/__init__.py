"""pyanode: the limits of Neural ODEs and the ways around them.

Names that need torch load on first use, so that `import pyanode` stays light and the Julia bridge
can import juliacall before torch (see docs/julia.md).
"""

from __future__ import annotations

import importlib
from typing import Any

from pyanode._errors import DataError as DataError
from pyanode._errors import SolverError as SolverError
from pyanode._errors import SpecError as SpecError
from pyanode._errors import TrainingDiverged as TrainingDiverged
from pyanode.specs import ModelSpec as ModelSpec
from pyanode.specs import RunSpec as RunSpec
from pyanode.specs import SolverSpec as SolverSpec
from pyanode.specs import TrainSpec as TrainSpec

__version__ = "0.1.0"

_LAZY = {
    "Dataset": "pyanode.data",
    "load_dataset": "pyanode.data",
    "solve": "pyanode.solvers",
    "odeint": "pyanode.solvers",
    "odeint_adjoint": "pyanode.solvers",
    "ODEBlock": "pyanode.torch",
    "NeuralODELayer": "pyanode.torch",
    "build_model": "pyanode.torch",
    "count_parameters": "pyanode.torch",
    "get_backend": "pyanode.backends",
    "run": "pyanode.experiments.runner",
    "run_trial": "pyanode.experiments.runner",
    "run_trials": "pyanode.experiments.batch",
    "load_fitted": "pyanode.experiments.runner",
    "Trial": "pyanode.experiments.runner",
    "Record": "pyanode.experiments.runner",
    "RunOptions": "pyanode.experiments.runner",
    "RunResult": "pyanode.experiments.runner",
    "collect": "pyanode.experiments.store",
    "Sweep": "pyanode.experiments.sweep",
    "run_sweep": "pyanode.experiments.sweep",
}


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        return getattr(importlib.import_module(_LAZY[name]), name)
    raise AttributeError(f"module 'pyanode' has no attribute {name!r}")


def __dir__() -> list[str]:
    return sorted([*globals(), *_LAZY])
