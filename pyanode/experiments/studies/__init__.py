"""Solver-accuracy studies: forward and gradient work-precision, train-with-one/test-with-another,
and batch coupling (docs/studies.md).

Each study takes a `StudyProblem` (or trains its models), measures one row per solver setting,
writes a CSV table, `study.json` and a figure under `out`, and returns a `StudyResult`. Errors
are measured against a float64 reference whose convergence is checked on every run.

- `_problems`: the problems (test ODEs, Neural ODEs), `PROBLEMS`, `ProblemSource`;
- `_reference`: the float64 references and their checks;
- `_settings`: solver settings and the config fields and checks the studies share;
- `_measure`: time, memory, errors, and writing a study's table, study.json and figure;
- `_julia`: the rows measured by the Julia backend;
- `work_precision` (forward, gradient), `cross_solver`, `batch_coupling`: the studies.
"""

from pyanode.experiments.studies._measure import PeakMemory as PeakMemory
from pyanode.experiments.studies._measure import StudyResult as StudyResult
from pyanode.experiments.studies._measure import text_table as text_table
from pyanode.experiments.studies._problems import PROBLEMS as PROBLEMS
from pyanode.experiments.studies._problems import HalfSquaredNorm as HalfSquaredNorm
from pyanode.experiments.studies._problems import LinearField as LinearField
from pyanode.experiments.studies._problems import LotkaVolterraField as LotkaVolterraField
from pyanode.experiments.studies._problems import OutputLoss as OutputLoss
from pyanode.experiments.studies._problems import ProblemSource as ProblemSource
from pyanode.experiments.studies._problems import StudyProblem as StudyProblem
from pyanode.experiments.studies._problems import VanDerPolField as VanDerPolField
from pyanode.experiments.studies._problems import linear as linear
from pyanode.experiments.studies._problems import load_problem as load_problem
from pyanode.experiments.studies._problems import lotka_volterra as lotka_volterra
from pyanode.experiments.studies._problems import problem_from_model as problem_from_model
from pyanode.experiments.studies._problems import problem_from_run as problem_from_run
from pyanode.experiments.studies._problems import trained_node as trained_node
from pyanode.experiments.studies._problems import van_der_pol as van_der_pol
from pyanode.experiments.studies._reference import ForwardReference as ForwardReference
from pyanode.experiments.studies._reference import GradientReference as GradientReference
from pyanode.experiments.studies._reference import ReferenceNotConverged as ReferenceNotConverged
from pyanode.experiments.studies._reference import forward_reference as forward_reference
from pyanode.experiments.studies._reference import gradient_reference as gradient_reference
from pyanode.experiments.studies._reference import loss_and_gradient as loss_and_gradient
from pyanode.experiments.studies._settings import Setting as Setting
from pyanode.experiments.studies._settings import parse_setting as parse_setting
from pyanode.experiments.studies.batch_coupling import BatchCouplingConfig as BatchCouplingConfig
from pyanode.experiments.studies.batch_coupling import batch_coupling_study as batch_coupling_study
from pyanode.experiments.studies.cross_solver import CrossSolverConfig as CrossSolverConfig
from pyanode.experiments.studies.cross_solver import cross_solver_study as cross_solver_study
from pyanode.experiments.studies.work_precision import GRADIENT_METHODS as GRADIENT_METHODS
from pyanode.experiments.studies.work_precision import ForwardConfig as ForwardConfig
from pyanode.experiments.studies.work_precision import GradientConfig as GradientConfig
from pyanode.experiments.studies.work_precision import forward_study as forward_study
from pyanode.experiments.studies.work_precision import gradient_study as gradient_study
from pyanode.experiments.studies.work_precision import measured_order as measured_order
