"""The Julia column of the work-precision studies.

Where the Julia backend is usable and the problem is a Neural ODE with a spec (the Julia backend
builds every model kind), the forward and gradient studies rebuild the model in Julia at every
solver setting, load the torch weights (the shared flat order) and measure there too: rows with
`backend = "julia"`. Julia solves in Float32 (the Julia backend's precision), so its errors level
off near float32 round-off; its times include the juliacall crossing; its memory is not
measured. Otherwise the tables say why there are torch rows only; no row is ever made up.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np
import torch

from pyanode._errors import JuliaUnavailable, SolverError
from pyanode.experiments.studies._measure import (
    coupling_measures,
    failed_row,
    max_abs_error,
    relative_error,
    timed,
)
from pyanode.experiments.studies._problems import OutputLoss, StudyProblem
from pyanode.experiments.studies._settings import Setting, check_mode
from pyanode.specs import TrainSpec

_CPU = torch.device("cpu")


def julia_backend(mode: str, problem: StudyProblem | None, backend: Any = None):
    """`(backend, note)`: the Julia backend to measure with (None for torch rows only) and one
    line saying which backends the rows come from and why.

    Arguments:
        mode: `auto` (Julia when usable), `off`, or `require` (raise when it cannot run).
        problem: the problem to study (None: no Julia model to build).
        backend: the backend object to use when Julia runs (default `JuliaBackend()`).

    Raises:
        JuliaUnavailable: for `require` when Julia is not usable or cannot build the problem.
    """
    check_mode(mode)
    if mode == "off":
        return None, "julia: off (julia='off'); torch rows only"
    why = _why_not(problem, backend)
    if why is None:
        from pyanode.julia import JuliaBackend

        return (
            backend or JuliaBackend(),
            "julia: rows from the Julia backend (Float32) beside torch",
        )
    if mode == "require":
        raise JuliaUnavailable(f"julia='require', but {why}")
    return None, f"julia: not available ({why}); torch rows only"


def _why_not(problem: StudyProblem | None, backend: Any) -> str | None:
    if problem is None or problem.model_spec is None:
        name = "this study" if problem is None else f"problem {problem.name!r}"
        return f"{name} has no Neural ODE spec for the Julia backend to rebuild"
    if not isinstance(problem.head, OutputLoss):
        return f"problem {problem.name!r} has no output map and targets"
    if backend is not None:
        return None
    try:
        from pyanode import julia
    except ImportError as err:  # pragma: no cover - the bridge is part of the package
        return f"pyanode.julia cannot be imported: {err}"
    state = julia.status()
    return None if state.usable else state.reason


def _flat_weights(problem: StudyProblem) -> np.ndarray:
    """The problem's weights in the shared flat order: input map, field, output map."""
    modules = (problem.input_map, problem.field, problem.head.output_map)
    return np.concatenate(
        [p.detach().cpu().reshape(-1).numpy() for m in modules for p in m.parameters()]
    ).astype(np.float32)


def _data(problem: StudyProblem):
    from pyanode.data import Dataset

    x = problem.inputs.detach().cpu().numpy().astype(np.float32)
    y = problem.head.targets.detach().cpu().numpy()
    out_dim = problem.head.output_map.out_features
    if y.dtype == np.int64:
        return Dataset(x, y, "study", "classification", {"n_classes": int(out_dim)})
    return Dataset(x, y.astype(np.float32).reshape(len(x), -1), "study", "regression", {})


def _build(backend: Any, problem: StudyProblem, setting: Setting, gradient: str, data) -> Any:
    solver = setting.solver_spec(t1=problem.t1, gradient=gradient)
    fitted = backend.build(problem.model_spec, solver, TrainSpec(seed=0), data)
    fitted.set_parameters(_flat_weights(problem))
    return fitted


def julia_forward_row(
    backend: Any, problem: StudyProblem, setting: Setting, reference: torch.Tensor, repeats: int
) -> dict[str, Any]:
    """One forward row measured by the Julia backend (columns of `FORWARD_COLUMNS`)."""
    nan = math.nan
    row: dict[str, Any] = {"backend": "julia", "problem": problem.name, **setting.columns()}
    data = _data(problem)
    try:
        fitted = _build(backend, problem, setting, "backprop", data)
        nfe = fitted.forward_nfe(data.x)
        seconds, y1 = timed(lambda: fitted.features(data.x), repeats, _CPU)
    except SolverError as err:
        return failed_row(row, err, "n_accepted", "n_rejected", "seconds", "error", "error_max")
    end = torch.from_numpy(np.asarray(y1, dtype=np.float64))
    row.update(
        nfe_forward=nfe,
        n_accepted=nan,
        n_rejected=nan,
        seconds=seconds,
        error=relative_error(end, reference),
        error_max=max_abs_error(end, reference),
        status="ok",
    )
    return row


def julia_gradient_row(
    backend: Any,
    problem: StudyProblem,
    setting: Setting,
    gradient: str,
    reference: Any,
    repeats: int,
) -> dict[str, Any]:
    """One gradient row measured by the Julia backend with its method `gradient` (a name of
    `gradients_of("julia")`; columns of `work_precision.GRADIENT_COLUMNS`)."""
    row: dict[str, Any] = {
        "backend": "julia",
        "problem": problem.name,
        **setting.columns(),
        "gradient": gradient,
    }
    data = _data(problem)
    try:
        fitted = _build(backend, problem, setting, gradient, data)
        seconds, out = timed(lambda: fitted.loss_and_gradient(data.x, data.y), repeats, _CPU)
    except SolverError as err:
        return failed_row(
            row, err, "nfe_backward", "nfe_total", "seconds", "peak_bytes", "loss_error", "error"
        )
    grad = torch.from_numpy(np.asarray(out["gradient"], dtype=np.float64))
    loss = torch.tensor(float(out["loss"]), dtype=torch.float64)
    row.update(
        nfe_forward=out["nfe_forward"],
        nfe_backward=out["nfe_backward"],
        nfe_total=out["nfe_forward"] + out["nfe_backward"],
        seconds=seconds,
        peak_bytes=math.nan,
        loss_error=relative_error(loss, torch.tensor(reference.loss, dtype=torch.float64)),
        error=relative_error(grad, reference.gradient),
        status="ok",
    )
    return row


def julia_coupling_row(
    backend: Any,
    problem: StudyProblem,
    setting: Setting,
    mode: str,
    reference: torch.Tensor,
    repeats: int,
) -> dict[str, Any]:
    """One batch-coupling row measured by the Julia backend: one `features` call for the batch,
    or one per sample (columns of `batch_coupling.COLUMNS`)."""
    row: dict[str, Any] = {"backend": "julia", "problem": problem.name, **setting.columns()}
    del row["dt"]
    row.update(mode=mode, samples=problem.batch)
    data = _data(problem)
    x = data.x
    parts = [x] if mode == "batch" else [x[i : i + 1] for i in range(len(x))]
    try:
        fitted = _build(backend, problem, setting, "backprop", data)
        nfes = [fitted.forward_nfe(part) for part in parts]
        seconds, y1 = timed(
            lambda: np.concatenate([np.asarray(fitted.features(p)) for p in parts]), repeats, _CPU
        )
    except SolverError as err:
        return failed_row(row, err, "nfe_min", "nfe_max", "seconds", "error", "error_max_sample")
    row.update(coupling_measures(nfes, seconds, torch.from_numpy(y1.astype(np.float64)), reference))
    return row


def julia_evaluate(backend: Any, problem: StudyProblem, setting: Setting) -> dict[str, Any]:
    """Test accuracy, loss, NFE and predicted classes of a trained classifier's weights solved by
    the Julia backend with `setting` (as `cross_solver.evaluate`)."""
    data = _data(problem)
    fitted = _build(backend, problem, setting, "backprop", data)
    logits = torch.from_numpy(np.asarray(fitted.logits(data.x), dtype=np.float64))
    targets = torch.from_numpy(data.y)
    classes = logits.argmax(dim=1)
    return {
        "test_acc": (classes == targets).double().mean().item(),
        "test_loss": torch.nn.functional.cross_entropy(logits, targets).item(),
        "nfe_forward": fitted.forward_nfe(data.x),
        "classes": classes,
    }
