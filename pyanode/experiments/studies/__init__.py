"""Solver-accuracy studies: forward and gradient work-precision, train-with-one/test-with-another,
and batch coupling (docs/studies.md).

Each study takes a `StudyProblem` (or trains its models), measures one row per solver setting,
writes a CSV table, `study.json` and a figure under `out`, and returns a `StudyResult`. Errors
are measured against a float64 reference whose convergence is checked on every run.
"""

from pyanode.experiments.studies._measure import PeakMemory as PeakMemory
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
from pyanode.experiments.studies.batch_coupling import BatchCouplingConfig as BatchCouplingConfig
from pyanode.experiments.studies.batch_coupling import batch_coupling_study as batch_coupling_study
from pyanode.experiments.studies.cross_solver import CrossSolverConfig as CrossSolverConfig
from pyanode.experiments.studies.cross_solver import cross_solver_study as cross_solver_study
from pyanode.experiments.studies.gradient_precision import GRADIENT_METHODS as GRADIENT_METHODS
from pyanode.experiments.studies.gradient_precision import GradientConfig as GradientConfig
from pyanode.experiments.studies.gradient_precision import gradient_study as gradient_study
from pyanode.experiments.studies.problems import PROBLEMS as PROBLEMS
from pyanode.experiments.studies.problems import StudyProblem as StudyProblem
from pyanode.experiments.studies.problems import load_problem as load_problem
from pyanode.experiments.studies.problems import problem_from_model as problem_from_model
from pyanode.experiments.studies.problems import problem_from_run as problem_from_run
from pyanode.experiments.studies.work_precision import ForwardConfig as ForwardConfig
from pyanode.experiments.studies.work_precision import forward_study as forward_study
from pyanode.experiments.studies.work_precision import measured_order as measured_order

# study name (CLI) -> what it measures
STUDIES = {
    "forward": "forward work-precision: error of y(t1) against NFE and time, per solver",
    "gradient": "gradient work-precision: gradient error against NFE, time and peak memory, per "
    "gradient method",
    "cross-solver": "train with one solver setting, test with the others (heatmap)",
    "batch-coupling": "one adaptive solve for the whole batch against one solve per sample",
}
