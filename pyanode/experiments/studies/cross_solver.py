"""Train with one solver, test with another: does a Neural ODE rely on its solver's error?

Dupont et al. (2019) note that a ResNet is a Neural ODE solved by Euler with step 1, and that a
net trained that way need not be a good flow. Here a model is trained at each setting of
`train_settings` (solver and tolerance, or fixed step) and every trained model is evaluated on
an independent test draw with every setting of `eval_settings` and with the `exact` flow (the
float64 model solved by Dopri5 at `reference_rtol`). A net that relies on its training solver's
error loses accuracy away from the diagonal, most of all in the `exact` column; `agreement` is
the fraction of test points whose predicted class equals the exact flow's.
"""

from __future__ import annotations

import logging
import math
import os
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import torch

from pyanode._errors import SolverError, SpecError
from pyanode._names import ACTIVATIONS, MODEL_KINDS
from pyanode._validate import check_number
from pyanode.experiments.batch import run_trials
from pyanode.experiments.runner import (
    TEST_SEED_OFFSET,
    Trial,
    load_data,
    load_fitted,
    run,
)
from pyanode.experiments.store import read_trial
from pyanode.experiments.studies._julia import julia_backend as resolve_julia
from pyanode.experiments.studies._julia import julia_evaluate
from pyanode.experiments.studies._measure import StudyResult, failed_row, save_study
from pyanode.experiments.studies._problems import (
    OutputLoss,
    StudyProblem,
    problem_from_model,
    problem_from_run,
)
from pyanode.experiments.studies._reference import end_state
from pyanode.experiments.studies._settings import (
    Setting,
    check_mode,
    parse_setting,
    study_setting,
)
from pyanode.solvers import Dopri5, PIController
from pyanode.specs import ModelSpec, RunSpec, SolverSpec, TrainSpec
from pyanode.specs import setting as option

log = logging.getLogger("pyanode")

EXACT = "exact"
RUNS = "runs"  # the batch folder of the trained models under the study's out
COLUMNS = (
    "backend",
    "trained_with",
    "evaluated_with",
    "train_test_acc",
    "test_acc",
    "gap",
    "test_loss",
    "agreement",
    "nfe_forward",
    "status",
)


@dataclass(frozen=True)
class CrossSolverConfig:
    """Settings of the train-with-one, test-with-another study.

    Arguments:
        train_settings: `SOLVER:TOL` or `SOLVER:dt=STEP` strings, one model trained per setting
            (e.g. `euler:dt=1` is a one-block ResNet).
        eval_settings: the settings every model is evaluated with (default: `train_settings`);
            the `exact` flow is always added.
        kind, hidden, activation, augment_dim: the model (as in `ModelSpec`).
        epochs, lr, batch_size, seed: training (Adam, as in `TrainSpec`; backprop gradients).
        n_points: training points of three spheres; the test set is an independent draw of
            the same size (seed + 1000).
        reference_rtol: tolerance of the float64 Dopri5 `exact` flow.
        max_steps: step budget of one evaluation solve.
        julia: as in `ForwardConfig`: `auto` also evaluates every trained model with the Julia
            backend's solvers where it is usable (rows with `backend = "julia"`).

    Raises:
        SpecError: for a malformed setting, an invalid model or training value, or an unknown
            julia mode.
    """

    train_settings: tuple[str, ...] = option(
        ("euler:dt=1", "euler:dt=0.25", "rk4:dt=0.5", "dp5:1e-3"),
        "training settings SOLVER:TOL or SOLVER:dt=STEP", option="settings",
    )  # fmt: skip
    eval_settings: tuple[str, ...] = option((), "evaluation settings", shown="the training's")
    kind: str = option("node", "model kind", choices=MODEL_KINDS)
    hidden: int = option(32, "hidden width of the vector field")
    activation: str = option("tanh", "activation of the vector field", choices=ACTIVATIONS)
    augment_dim: int = option(0, "zeros appended (anode)")
    epochs: int = option(10, "training epochs per model")
    lr: float = option(1e-2, "Adam learning rate")
    batch_size: int = option(96, "mini-batch size")
    seed: int = option(0, "seed of the data, weights and batches")
    n_points: int = option(1024, "training and test points each")
    reference_rtol: float = study_setting("reference_rtol", 1e-10)
    max_steps: int = study_setting("max_steps")
    julia: str = study_setting("julia")

    def __post_init__(self) -> None:
        check_mode(self.julia)
        if not self.train_settings:
            raise SpecError("train_settings must not be empty, e.g. ('euler:dt=1', 'dp5:1e-3')")
        self.settings()
        self.model_spec()
        self.train_spec()
        check_number("reference_rtol", self.reference_rtol, low=1e-14, high=1e-6,
                     strict_high=True, error=SpecError)  # fmt: skip

    def settings(self) -> tuple[list[Setting], list[Setting]]:
        """The parsed train and evaluation settings."""
        train = [parse_setting(s, max_steps=self.max_steps) for s in self.train_settings]
        evals = [parse_setting(s, max_steps=self.max_steps) for s in self.eval_settings]
        return train, evals or train

    def model_spec(self) -> ModelSpec:
        return ModelSpec(
            kind=self.kind,
            hidden=self.hidden,
            activation=self.activation,
            augment_dim=self.augment_dim,
        )

    def train_spec(self) -> TrainSpec:
        return TrainSpec(epochs=self.epochs, lr=self.lr, batch_size=self.batch_size, seed=self.seed)


def evaluate(problem: StudyProblem, setting: Setting | None, reference_rtol: float) -> dict:
    """Test accuracy, loss and NFE of a trained model's `problem` solved with `setting` (None:
    the exact flow, float64 Dopri5 at `reference_rtol`); `classes` are the predictions.

    Raises:
        SpecError: if the problem's loss is not a classifier's (no accuracy to compare).
    """
    if not isinstance(problem.head, OutputLoss) or problem.head.targets.dtype != torch.int64:
        raise SpecError(
            f"problem {problem.name!r} is not a trained classifier; the cross-solver study needs "
            "a Neural ODE with class labels (trained here, or --run DIR)"
        )
    if setting is None:
        work = problem.converted(torch.float64)
        method = Dopri5()
        controller = PIController(rtol=reference_rtol, atol=reference_rtol, max_steps=1_000_000)
    else:
        work, method, controller = problem, setting.method(), setting.controller()
    y1, stats = end_state(work, method, controller)
    with torch.no_grad():
        logits = work.head.output_map(y1)
        loss = work.loss(y1).item()
    classes = logits.argmax(dim=1)
    return {
        "test_acc": (classes == work.head.targets).double().mean().item(),
        "test_loss": loss,
        "nfe_forward": stats.nfe_forward,
        "classes": classes.cpu(),
    }


def _trial(config: CrossSolverConfig, setting: Setting) -> Trial:
    """The training trial of one setting: three spheres, tested on an independent draw."""
    spec = RunSpec(
        dataset="three-spheres",
        dataset_kwargs={"n": config.n_points, "seed": config.seed},
        test_fraction=0.0,
        test_kwargs={"seed": config.seed + TEST_SEED_OFFSET},
        model=config.model_spec(),
        solver=setting.solver_spec(),
        train=config.train_spec(),
    )
    return Trial(spec, {"trained_with": setting.label})


def _train(config: CrossSolverConfig, settings: list[Setting], out: Path | None) -> list:
    """(label, problem) of a model trained per setting: through the runner into
    `out/runs/` (a finished model is loaded, not trained again), or in memory for None."""
    trials = [_trial(config, s) for s in settings]
    if out is None:
        fits = [run(t, progress=False).fitted for t in trials]
    else:
        report = run_trials(trials, out / RUNS)
        fits = [load_fitted(out / RUNS / i) for i in report.ids]
    _, test = load_data(trials[0].spec)
    assert test is not None
    return [
        (
            s.label,
            problem_from_model(
                fitted.model,
                torch.as_tensor(test.x),
                torch.as_tensor(test.y),
                name="trained-node",
                description=f"{config.kind} trained with {s.label}",
                model_spec=config.model_spec(),
            ),
        )
        for s, fitted in zip(settings, fits, strict=True)
    ]


def _cross_row(backend, label, setting, train_acc, exact, measure) -> dict[str, Any]:
    row: dict[str, Any] = {
        "backend": backend,
        "trained_with": label,
        "evaluated_with": EXACT if setting is None else setting.label,
        "train_test_acc": train_acc,
    }
    try:
        res = measure(setting)
    except SolverError as err:
        return failed_row(row, err, "test_acc", "gap", "test_loss", "agreement")
    row.update(
        test_acc=res["test_acc"],
        gap=res["test_acc"] - exact["test_acc"],
        test_loss=res["test_loss"],
        agreement=(res["classes"] == exact["classes"]).double().mean().item(),
        nfe_forward=res["nfe_forward"],
        status="ok",
    )
    return row


def _run_setting(spec: SolverSpec) -> Setting:
    if spec.adaptive:
        return Setting(spec.solver, tol=spec.rtol, max_steps=spec.max_steps)
    return Setting(spec.solver, dt=spec.dt, max_steps=spec.max_steps)


def cross_solver_study(
    config: CrossSolverConfig = CrossSolverConfig(),
    out: str | os.PathLike | None = None,
    *,
    run: str | os.PathLike | None = None,
    figures: bool = True,
    julia_backend: Any = None,
) -> StudyResult:
    """Train a model per training setting (or load the one of a stored run) and evaluate each
    with every evaluation setting and the exact flow.

    Arguments:
        config: settings, model and training.
        out: folder for `cross_solver.csv`, `study.json`, the heatmap `cross_solver.{png,pdf}`
            and the trained models as a batch of trials under `runs/` (keyed `trained_with`;
            a model trained before is loaded from there, not trained again); nothing is
            written when None.
        run: a stored run folder; its model is evaluated instead of training new ones (its
            test split, up to 1024 points, is the test set).
        figures: draw the heatmap (needs `out`).
        julia_backend: the backend object for the Julia rows (default `JuliaBackend()`).

    Returns:
        The `StudyResult` (rows with the columns `COLUMNS`; `gap` is `test_acc` minus the
        accuracy of the exact flow, which is always solved by torch in float64).

    Raises:
        JuliaUnavailable: for `julia="require"` when the Julia backend cannot run.
    """
    out_path = None if out is None else Path(out)
    train_settings, eval_settings = config.settings()
    if run is not None:
        problem = problem_from_run(run, batch=1024)
        stored = read_trial(run).spec
        trained = [(_run_setting(stored.solver).label, problem)]
    else:
        trained = _train(config, train_settings, out_path)
    julia, note = resolve_julia(config.julia, trained[0][1], julia_backend)
    rows = []
    for label, problem in trained:
        exact = evaluate(problem, None, config.reference_rtol)
        backends = [("torch", None)] + ([] if julia is None else [("julia", julia)])
        for backend_name, backend in backends:

            def measure(setting, backend=backend, problem=problem):
                if setting is None or backend is None:
                    return evaluate(problem, setting, config.reference_rtol)
                return julia_evaluate(backend, problem, setting)

            own = next((s for s in eval_settings if s.label == label), None)
            train_acc = measure(own)["test_acc"] if own is not None else math.nan
            settings = [*eval_settings, None] if backend is None else eval_settings
            for setting in settings:
                row = _cross_row(backend_name, label, setting, train_acc, exact, measure)
                log.info(
                    "study cross-solver: trained %s, evaluated %s (%s): test acc %.4f",
                    label,
                    row["evaluated_with"],
                    backend_name,
                    row["test_acc"],
                )
                rows.append(row)
    meta = {
        "study": "cross-solver",
        "config": asdict(config),
        "run": None if run is None else str(run),
        "problems": [p.describe() for _, p in trained],
        "exact": f"float64 dp5 at rtol = atol = {config.reference_rtol:g}",
        "backends": sorted({r["backend"] for r in rows}),
        "julia": note,
    }
    return save_study(out_path, StudyResult("cross-solver", rows, meta), COLUMNS, figures=figures)
