"""Solver-accuracy studies: references, work-precision, orders, memory, coupling, CLI, figures."""

from __future__ import annotations

import csv
import json
import math

import numpy as np
import pytest
import torch

from pyanode._errors import JuliaUnavailable, SpecError
from pyanode.cli import main
from pyanode.experiments.store import read_batch
from pyanode.experiments.studies import (
    BatchCouplingConfig,
    CrossSolverConfig,
    ForwardConfig,
    GradientConfig,
    LinearField,
    PeakMemory,
    ReferenceNotConverged,
    Setting,
    StudyProblem,
    batch_coupling_study,
    cross_solver_study,
    forward_reference,
    forward_study,
    gradient_reference,
    gradient_study,
    load_problem,
    measured_order,
    parse_setting,
    problem_from_run,
)
from pyanode.experiments.studies.cross_solver import evaluate
from pyanode.experiments.studies.work_precision import measure_forward
from pyanode.plots.studies import plot_forward, read_table
from pyanode.specs import SolverSpec
from pyanode.torch import build_model, set_flat_parameters

ADAPTIVE = ("bosh3", "dp5", "tsit5")


@pytest.fixture(autouse=True)
def no_julia(monkeypatch):
    """Julia is never probed here (its rows are tested with a stand-in backend below)."""
    monkeypatch.setenv("PYANODE_DISABLE_JULIA", "1")


@pytest.fixture(scope="module")
def linear():
    return load_problem("linear", batch=4, t1=1.0)


@pytest.fixture(scope="module")
def linear_reference(linear):
    return forward_reference(linear)


@pytest.fixture(scope="module")
def tiny_node():
    """An IL-NODE (so that the input map has weights) trained for one batch on three spheres."""
    return load_problem(
        "trained-node", kind="il-node", augment_dim=1, hidden=8, epochs=1, n=96, batch=16
    )


# -- references ---------------------------------------------------------------------------------
def test_reference_is_converged_and_agrees_with_closed_form_and_scipy(linear, linear_reference):
    ref = linear_reference
    assert ref.halving_change < 1e-10  # halving rtol=1e-12 changes y(t1) by less than 1e-10
    assert ref.tsit5_change < 1e-10
    assert ref.scipy_change < 1e-10  # scipy DOP853 at the same tolerance
    assert ref.exact_change < 1e-10  # expm closed form
    exact = linear.y0() @ torch.linalg.matrix_exp(linear.field.a * linear.t1).T
    assert torch.allclose(ref.y1, exact.detach(), rtol=0, atol=1e-11)


def test_reference_of_trained_node_is_converged(tiny_node):
    ref = forward_reference(tiny_node)
    assert ref.y1.dtype == torch.float64
    assert ref.halving_change < 1e-10
    assert ref.scipy_change < 1e-10
    assert math.isnan(ref.exact_change)


def test_gradient_reference_matches_closed_form_gradient(linear):
    ref = gradient_reference(linear)
    assert ref.halving_change < 1e-10
    assert ref.adjoint_change < 1e-9
    # d/dA of 0.5 |expm(A t1) y0|^2 / B through torch.linalg.matrix_exp in float64
    a = linear.field.a.detach().clone().requires_grad_()
    y1 = linear.y0() @ torch.linalg.matrix_exp(a * linear.t1).T
    (grad,) = torch.autograd.grad(0.5 * y1.pow(2).sum() / linear.batch, a)
    assert torch.allclose(ref.gradient, grad.reshape(-1), rtol=1e-10, atol=1e-11)
    assert ref.exact_change < 1e-9


def test_loose_reference_is_refused(linear):
    with pytest.raises(ReferenceNotConverged, match=r"not converged: halving rtol=0.0001"):
        forward_reference(linear, rtol=1e-4)


# -- forward work-precision -----------------------------------------------------------------------
def test_error_decreases_monotonically_with_tolerance(linear):
    tolerances = (1e-3, 1e-4, 1e-5, 1e-6, 1e-7, 1e-8, 1e-9)
    config = ForwardConfig(solvers=ADAPTIVE, tolerances=tolerances, repeats=1, julia="off")
    result = forward_study(linear, config)
    for solver in ADAPTIVE:
        rows = [r for r in result.rows if r["solver"] == solver]
        errors = [r["error"] for r in rows]
        nfe = [r["nfe_forward"] for r in rows]
        assert [r["rtol"] for r in rows] == list(tolerances)
        assert all(a > b for a, b in zip(errors, errors[1:], strict=False)), (solver, errors)
        assert all(a <= b for a, b in zip(nfe, nfe[1:], strict=False)), (solver, nfe)
        assert all(e < 30 * t for e, t in zip(errors, tolerances, strict=True)), (solver, errors)


@pytest.mark.parametrize(
    ("solver", "order", "steps", "slack"),
    [
        ("euler", 1, (64, 128, 256, 512), 0.1),
        ("midpoint", 2, (16, 32, 64, 128), 0.1),
        ("rk4", 4, (8, 16, 32, 64), 0.1),
        ("bosh3", 3, (8, 16, 32, 64), 0.1),
        ("dp5", 5, (4, 8, 16, 32), 0.2),
        # Tsitouras chose a tiny leading error term, so the sixth-order terms still show at
        # these steps (measured 5.44); below dt = 1/32 the error meets float64 round-off.
        ("tsit5", 5, (4, 8, 16, 32), 0.5),
    ],
)
def test_measured_order_matches_tableau(linear, solver, order, steps, slack):
    with torch.no_grad():
        exact = linear.exact(linear)  # the closed form, so the reference adds no error
    rows = [measure_forward(linear, Setting(solver, dt=linear.t1 / n), exact) for n in steps]
    assert Setting(solver, dt=0.1).columns()["order"] == order
    measured = measured_order([r["dt"] for r in rows], [r["error"] for r in rows])
    assert measured == pytest.approx(order, abs=slack)


def test_measured_order_fits_slope():
    dts = [0.1, 0.05, 0.025]
    assert measured_order(dts, [3 * d**2 for d in dts]) == pytest.approx(2.0, abs=1e-12)
    assert math.isnan(measured_order([0.1, 0.05], [1e-3, 0.0]))


def test_forward_study_writes_tables_orders_and_figure(tiny_node, tmp_path):
    config = ForwardConfig(
        solvers=("dp5", "rk4"), tolerances=(1e-3, 1e-6), steps=(4, 16), repeats=1
    )
    result = forward_study(tiny_node, config, tmp_path)
    assert {p.name for p in result.files} == {
        "forward.csv",
        "orders.csv",
        "study.json",
        "forward.png",
        "forward.pdf",
    }
    table = read_table(tmp_path / "forward.csv")
    assert len(table) == len(result.rows) == 4
    for stored, row in zip(table, result.rows, strict=True):
        assert stored["solver"] == row["solver"]
        assert stored["nfe_forward"] == row["nfe_forward"]
        assert stored["error"] == row["error"]  # floats are written exactly
        assert stored["backend"] == "torch"
    rk4 = [r for r in result.rows if r["solver"] == "rk4"]
    assert [r["nfe_forward"] for r in rk4] == [16, 64]  # 4 stages per step
    assert rk4[1]["error"] < rk4[0]["error"] / 50
    meta = json.loads((tmp_path / "study.json").read_text())
    assert meta["reference"]["halving_change"] < 1e-10
    assert meta["backends"] == ["torch"]
    assert "torch rows only" in meta["julia"] and "PYANODE_DISABLE_JULIA" in meta["julia"]
    with open(tmp_path / "orders.csv") as f:
        orders = list(csv.DictReader(f))
    assert [o["solver"] for o in orders] == ["rk4"] and orders[0]["tableau_order"] == "4"
    assert (tmp_path / "forward.png").stat().st_size > 10_000


def test_failed_solve_is_a_row(linear):
    row = measure_forward(linear, Setting("dp5", tol=1e-9, max_steps=3), torch.zeros(4, 2))
    assert row["status"] == "failed: max_steps"
    assert math.isnan(row["error"])


# -- gradient work-precision ----------------------------------------------------------------------
def test_peak_memory_counts_torch_allocations():
    with PeakMemory(torch.device("cpu")) as memory:
        a = torch.ones(10**6, dtype=torch.float64)
        b = a * 2  # both alive: 16 MB
        del a, b
        c = torch.ones(10**6, dtype=torch.float64)  # 8 MB again, after the frees
        del c
    assert memory.peak == pytest.approx(16_000_000, abs=64)


def test_gradient_study_memory_nfe_and_error(tiny_node):
    config = GradientConfig(
        solvers=("dp5", "rk4"), tolerances=(1e-3, 1e-6, 1e-9), steps=(8, 32), repeats=1
    )
    result = gradient_study(tiny_node, config)
    for r in result.rows:
        assert r["status"] == "ok" and r["backend"] == "torch"
        assert r["nfe_total"] == r["nfe_forward"] + r["nfe_backward"]

    def rows(solver, gradient):
        return [r for r in result.rows if r["solver"] == solver and r["gradient"] == gradient]

    backprop, adjoint = rows("dp5", "backprop"), rows("dp5", "adjoint")
    full_norm = rows("dp5", "adjoint-fullnorm")
    # backprop keeps every step for backward; the full-norm adjoint about one step, whatever
    # the tolerance; the seminorm adjoint its stages' VJP records until a chunk of them is summed
    # (at most the kernel's fold budget, 2 MiB), so it is bounded but not flat
    peaks = [r["peak_bytes"] for r in backprop]
    assert all(a < b for a, b in zip(peaks, peaks[1:], strict=False)), peaks
    full_peaks = [r["peak_bytes"] for r in full_norm]  # one step's state, give or take a
    assert max(full_peaks) < 1.1 * min(full_peaks)  # few bytes of step bookkeeping
    pairs = zip(full_norm, backprop, strict=True)
    assert all(b["peak_bytes"] > a["peak_bytes"] for a, b in pairs)
    assert all(0 < r["peak_bytes"] < 2 << 20 for r in adjoint)
    coarse, fine = rows("rk4", "backprop")  # 8 and 32 steps: the tape grows with them, on
    # top of what does not (the pool, the loss, the field's own workspace)
    assert 2 < fine["peak_bytes"] / coarse["peak_bytes"] < 4
    errors = [r["error"] for r in backprop]
    assert errors[0] > errors[1] > errors[2] and errors[2] < 1e-8
    assert {r["gradient"] for r in result.rows if r["solver"] == "rk4"} == {"backprop", "adjoint"}
    assert result.meta["reference"]["halving_change"] < 1e-10


# -- batch coupling -------------------------------------------------------------------------------
def _problem(y0: torch.Tensor) -> StudyProblem:
    a = torch.tensor([[-0.1, -2.0], [2.0, -0.1]], dtype=torch.float64)
    return StudyProblem("custom", LinearField(a), y0, t1=1.0)


def test_batch_of_identical_samples_is_not_coupled():
    problem = _problem(torch.tensor([[1.0, 0.5]], dtype=torch.float64).repeat(3, 1))
    config = BatchCouplingConfig(solvers=("dp5",), tolerances=(1e-4, 1e-7), julia="off")
    rows = batch_coupling_study(problem, config).rows
    for batch, single in zip(rows[::2], rows[1::2], strict=True):
        assert (batch["mode"], single["mode"]) == ("batch", "per-sample")
        assert batch["nfe_forward"] == single["nfe_forward"] == single["nfe_max"]
        assert batch["error"] == pytest.approx(single["error"], rel=1e-12)


def test_batch_coupling_shares_steps_across_samples():
    # a sample at rest needs no resolution of its own; in the batch it is solved with the
    # steps of the moving one, whose RMS error is halved by the resting sample's zero error
    problem = _problem(torch.tensor([[1.0, 0.0], [0.0, 0.0]], dtype=torch.float64))
    config = BatchCouplingConfig(solvers=("dp5",), tolerances=(1e-6,), julia="off")
    batch, single = batch_coupling_study(problem, config).rows
    assert single["nfe_min"] < single["nfe_max"]
    assert single["nfe_forward"] == (single["nfe_min"] + single["nfe_max"]) / 2
    assert batch["nfe_forward"] <= single["nfe_max"]
    assert batch["nfe_forward"] > single["nfe_min"]


# -- train with one, test with another ------------------------------------------------------------
@pytest.fixture(scope="module")
def cross(tmp_path_factory):
    out = tmp_path_factory.mktemp("cross")
    config = CrossSolverConfig(
        train_settings=("euler:dt=1", "dp5:1e-3"), hidden=8, epochs=1, n_points=96, julia="off"
    )
    return cross_solver_study(config, out), out


def test_cross_solver_diagonal_reproduces_training_accuracy(cross):
    result, out = cross
    assert len(result.rows) == 2 * 3  # 2 trained models x (2 settings + exact)
    for label in ("euler:dt=1", "dp5:0.001"):
        (trial,) = read_batch(out / "runs", trained_with=label)
        history = trial.history
        diag = next(
            r for r in result.rows if r["trained_with"] == label and r["evaluated_with"] == label
        )
        assert diag["test_acc"] == pytest.approx(history[-1]["test_acc"], abs=1e-12)
        exact = next(
            r for r in result.rows if r["trained_with"] == label and r["evaluated_with"] == "exact"
        )
        assert exact["gap"] == 0.0 and exact["agreement"] == 1.0
        assert diag["gap"] == pytest.approx(diag["test_acc"] - exact["test_acc"])
    assert (out / "cross_solver.png").exists()


def test_cross_solver_on_a_stored_run_loads_its_weights(cross):
    result, out = cross
    (trial,) = read_batch(out / "runs", trained_with="dp5:0.001")
    stored = cross_solver_study(
        CrossSolverConfig(train_settings=("dp5:1e-3",), julia="off"), run=trial.folder
    )
    # the stored trial tests on an independent draw of 96 points: the same test set
    assert [r["evaluated_with"] for r in stored.rows] == ["dp5:0.001", "exact"]
    assert stored.rows[0]["test_acc"] == next(
        r["test_acc"] for r in result.rows
        if (r["trained_with"], r["evaluated_with"]) == ("dp5:0.001", "dp5:0.001")
    )  # fmt: skip
    assert stored.meta["problems"][0]["batch"] == 96
    assert "stored weights" in stored.meta["problems"][0]["description"]


def test_a_study_run_again_loads_its_trained_models(cross, forbid_training):
    """The models of the cross-solver study are trials: a second run loads them, trains none."""

    result, out = cross

    forbid_training()
    config = CrossSolverConfig(
        train_settings=("euler:dt=1", "dp5:1e-3"), hidden=8, epochs=1, n_points=96, julia="off"
    )
    again = cross_solver_study(config, out, figures=False)
    assert [r["test_acc"] for r in again.rows] == [r["test_acc"] for r in result.rows]


def test_problem_from_run_loads_the_stored_weights(tmp_path, forbid_training):
    from pyanode import ModelSpec, RunSpec, TrainSpec, run

    spec = RunSpec(
        dataset_kwargs={"n": 60, "seed": 3},
        model=ModelSpec(hidden=4),
        train=TrainSpec(epochs=1, batch_size=24, seed=3),
    )
    result = run(spec, tmp_path, progress=False)
    forbid_training()
    problem = problem_from_run(tmp_path, batch=8)
    model = result.fitted.model
    assert torch.equal(problem.field.net[0].weight, model.block.field.net[0].weight)
    assert problem.batch == 8 and problem.model_spec == spec.model


# -- the Julia column, with a stand-in backend ----------------------------------------------------
class _StandIn:
    """Implements the few calls the studies make on a `JuliaFitted`, with torch in float64."""

    def __init__(self, model, solver, in_dim, out_dim):
        gradient = "backprop" if solver.gradient == "backprop" else "adjoint"
        spec = solver.replace(gradient=gradient)
        self.model = build_model(model, in_dim, out_dim, spec, seed=1).double()

    def set_parameters(self, vector):
        set_flat_parameters(self.model, vector)

    def features(self, x):
        with torch.no_grad():
            return self.model.features(torch.as_tensor(x, dtype=torch.float64)).numpy()

    def logits(self, x):
        with torch.no_grad():
            return self.model(torch.as_tensor(x, dtype=torch.float64)).numpy()

    def forward_nfe(self, x):
        self.features(x)
        return self.model.block.last_stats.nfe_forward

    def loss_and_gradient(self, x, y):
        params = list(self.model.parameters())
        out = self.model(torch.as_tensor(x, dtype=torch.float64))
        loss = torch.nn.functional.cross_entropy(out, torch.as_tensor(y))
        grads = torch.autograd.grad(loss, params)
        stats = self.model.block.last_stats
        return {
            "loss": loss.item(),
            "gradient": torch.cat([g.reshape(-1) for g in grads]).numpy(),
            "nfe_forward": stats.nfe_forward,
            "nfe_backward": stats.nfe_backward,
        }


class _StandInBackend:
    name = "julia"

    def build(self, model, solver, train, data):
        return _StandIn(model, solver, data.n_features, data.n_classes)


def test_julia_rows_use_the_same_weights_and_settings(tiny_node):
    config = ForwardConfig(solvers=("dp5", "rk4"), tolerances=(1e-4,), steps=(8,), repeats=1)
    rows = forward_study(tiny_node, config, julia_backend=_StandInBackend()).rows
    assert [r["backend"] for r in rows] == ["torch", "julia", "torch", "julia"]
    for ours, theirs in zip(rows[::2], rows[1::2], strict=True):
        assert theirs["nfe_forward"] == ours["nfe_forward"]
        assert theirs["error"] == pytest.approx(ours["error"], rel=1e-9)
    config = GradientConfig(solvers=("dp5",), tolerances=(1e-5,), gradients=("backprop",))
    rows = gradient_study(tiny_node, config, julia_backend=_StandInBackend()).rows
    torch_bp = rows[0]
    julia_bp = next(r for r in rows if r["backend"] == "julia" and r["gradient"] == "backprop")
    assert julia_bp["error"] == pytest.approx(torch_bp["error"], rel=1e-6)
    assert {r["gradient"] for r in rows if r["backend"] == "julia"} == {
        "backprop",
        "adjoint",
        "interpolating-adjoint",
        "quadrature-adjoint",
        "gauss-adjoint",
    }
    assert math.isnan(julia_bp["peak_bytes"])


def test_julia_required_but_unavailable(linear, tiny_node):
    with pytest.raises(JuliaUnavailable, match="julia='require', but disabled by"):
        forward_study(tiny_node, ForwardConfig(julia="require", solvers=("dp5",)))
    with pytest.raises(JuliaUnavailable, match="no Neural ODE spec"):
        forward_study(linear, ForwardConfig(julia="require", solvers=("dp5",)))


# -- errors ---------------------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("make", "error", "match"),
    [
        (lambda: load_problem("nope"), SpecError, "problem 'nope' is not known; accepted: linear"),
        (lambda: load_problem("linear", foo=1), SpecError, "unknown keyword argument.*foo"),
        (lambda: load_problem("linear", batch=0), SpecError, "batch must be an integer >= 1"),
        (lambda: ForwardConfig(solvers=("rk5",)), SpecError, "solvers='rk5' must be a non-empty"),
        (
            lambda: ForwardConfig(tolerances=(2.0,)),
            SpecError,
            r"tolerances must be a finite number >= 1e-14 and < 1, got 2.0",
        ),
        (lambda: ForwardConfig(steps=(0,)), SpecError, "steps must be an integer >= 1"),
        (lambda: ForwardConfig(dtype="float16"), SpecError, "dtype='float16' is not known"),
        (lambda: ForwardConfig(repeats=0), SpecError, "repeats must be an integer >= 1"),
        (lambda: ForwardConfig(julia="maybe"), SpecError, "julia='maybe' is not known"),
        (lambda: ForwardConfig(reference_rtol=1e-6), SpecError, "reference_rtol must be"),
        (lambda: GradientConfig(gradients=("magic",)), SpecError, "must be a non-empty subset of"),
        (
            lambda: BatchCouplingConfig(solvers=("rk4",)),
            SpecError,
            "batch coupling needs adaptive solvers .* got 'rk4'",
        ),
        (lambda: BatchCouplingConfig(samples=0), SpecError, "samples must be an integer >= 1"),
        (lambda: CrossSolverConfig(train_settings=()), SpecError, "must not be empty"),
        (lambda: parse_setting("dp5"), SpecError, "must be SOLVER:TOL or SOLVER:dt=STEP"),
        (lambda: parse_setting("dp5:fast"), SpecError, "must be SOLVER:TOL"),
        (lambda: Setting("euler", tol=1e-3), SpecError, "has no error estimate"),
        (lambda: Setting("dp5"), SpecError, "needs exactly one of tol"),
        (lambda: Setting("dp5", tol=-1.0), SpecError, "tol must be a finite number > 0"),
        (
            lambda: problem_from_run("/nonexistent"),
            FileNotFoundError,
            "nonexistent holds no finished trial",
        ),
    ],
)
def test_errors_name_the_value_and_the_accepted_ones(make, error, match):
    with pytest.raises(error, match=match):
        make()


def test_settings_parse_and_label():
    assert parse_setting("dp5:1e-3") == Setting("dp5", tol=1e-3)
    assert parse_setting("rk4:dt=0.25") == parse_setting("rk4:0.25") == Setting("rk4", dt=0.25)
    assert Setting("dp5", dt=0.1).label == "dp5:dt=0.1"  # an adaptive tableau at a fixed step
    spec = Setting("rk4", dt=0.25).solver_spec(t1=2.0)
    assert spec == SolverSpec(solver="rk4", dt=0.25, t1=2.0, max_steps=100_000)


def test_cross_solver_needs_a_classifier(linear):
    with pytest.raises(SpecError, match="is not a trained classifier"):
        evaluate(linear, Setting("dp5", tol=1e-3), 1e-10)


# -- command line and figures ---------------------------------------------------------------------
def test_cli_forward_matches_the_api(linear, tmp_path, capsys):
    argv = ["study", "forward", "--problem", "linear", "-P", "batch=4", "-P", "t1=1.0"]
    argv += ["--solvers", "dp5", "rk4", "--tolerances", "1e-3", "1e-5", "--steps", "8"]
    argv += ["--repeats", "1", "--no-figures", "--out", str(tmp_path)]
    assert main(argv) == 0
    printed = capsys.readouterr().out
    assert "nfe_forward" in printed and "torch rows only" in printed
    table = read_table(tmp_path / "forward.csv")
    config = ForwardConfig(solvers=("dp5", "rk4"), tolerances=(1e-3, 1e-5), steps=(8,), repeats=1)
    api = forward_study(linear, config).rows
    assert [(r["solver"], r["nfe_forward"]) for r in table] == [
        (r["solver"], float(r["nfe_forward"])) for r in api
    ]
    assert np.allclose([r["error"] for r in table], [r["error"] for r in api], rtol=1e-12)
    assert not (tmp_path / "forward.png").exists()


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["batch-coupling", "--problem", "linear", "--solvers", "rk4"], "needs adaptive solvers"),
        (["forward", "--problem", "linear", "-P", "colour=red"], "unknown keyword argument"),
        (["forward", "--problem", "linear", "-P", "batch"], "must be KEY=VALUE"),
        (["cross-solver", "--settings", "dp5"], "must be SOLVER:TOL or SOLVER:dt=STEP"),
    ],
)
def test_cli_errors_exit_2(argv, message, tmp_path, capsys):
    with pytest.raises(SystemExit) as exit_info:
        main(["study", *argv, "--out", str(tmp_path)])
    assert exit_info.value.code == 2
    assert message in capsys.readouterr().err


def test_cli_problem_and_run_are_exclusive(tmp_path, capsys):
    with pytest.raises(SystemExit):
        main(["study", "forward", "--problem", "linear", "--run", "x", "--out", str(tmp_path)])
    assert "not allowed with argument" in capsys.readouterr().err


def test_plot_refuses_a_table_without_its_columns(tmp_path):
    table = tmp_path / "bad.csv"
    table.write_text("backend,solver\ntorch,dp5\n")
    with pytest.raises(ValueError, match="lacks the column.*nfe_forward"):
        plot_forward(table, tmp_path / "fig")
    table.write_text("backend,solver\n")
    with pytest.raises(ValueError, match="has no rows"):
        plot_forward(table, tmp_path / "fig")
