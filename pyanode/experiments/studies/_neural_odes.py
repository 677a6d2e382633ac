"""Neural ODE problems of the studies: a model's flow with its loss, a briefly trained NODE, and
the model of a stored run."""

from __future__ import annotations

import math
from pathlib import Path

import torch
from torch import nn

from pyanode._errors import SpecError
from pyanode.experiments.studies._problem import OutputLoss, StudyProblem, check_batch
from pyanode.specs import ModelSpec, RunSpec, SolverSpec, TrainSpec


def problem_from_model(
    model: nn.Module,
    x: torch.Tensor,
    targets: torch.Tensor,
    *,
    name: str,
    description: str = "",
    model_spec: ModelSpec | None = None,
) -> StudyProblem:
    """The initial-value problem inside a `NeuralODE` on the inputs `x`, with its training loss.

    The problem shares the model's modules (no copy): field, input map and output map.
    `model_spec`, the spec the model was built from, lets the Julia backend rebuild it.

    Raises:
        SpecError: if `model` is not a `NeuralODE` with a plain `ODEBlock` (a ResNet has no ODE;
            an adaptive-depth block has per-sample end times).
    """
    from pyanode.torch import NeuralODE, ODEBlock

    if not isinstance(model, NeuralODE) or not isinstance(model.block, ODEBlock):
        raise SpecError(
            f"model {type(model).__name__} has no single ODE solve to study; "
            "accepted: NeuralODE with an ODEBlock (kinds node, anode, il-node, data-controlled, "
            "chebyshev, fourier, stacked)"
        )
    block = model.block
    jump_ts = None if block.jump_ts is None else tuple(block.jump_ts.tolist())
    return StudyProblem(
        name,
        block.field,
        x,
        t1=block.spec.t1,
        input_map=model.input_map,
        head=OutputLoss(model.output_map, targets),
        control=block.control,
        jump_ts=jump_ts,
        description=description,
        model_spec=model_spec,
    )


def trained_node(
    *,
    kind: str = "node",
    hidden: int = 32,
    activation: str = "tanh",
    augment_dim: int = 0,
    epochs: int = 10,
    lr: float = 1e-2,
    n: int = 1024,
    batch: int = 256,
    solver: str = "dp5",
    rtol: float = 1e-3,
    seed: int = 0,
):
    """A Neural ODE trained briefly on three spheres; the problem is its flow on `batch` points
    of an independent draw (seed + 1000), with its cross-entropy loss.

    Defaults: a NODE of width 32, Adam with lr 1e-2 for 10 epochs on 1024 points, dp5 at
    rtol = atol = 1e-3 with backprop (about 6 s on one CPU core, ~93% training accuracy).

    Raises:
        SpecError: for a model kind without a single ODE solve, or an invalid spec value.
    """
    from pyanode.data import three_spheres
    from pyanode.experiments.runner import TEST_SEED_OFFSET, run

    check_batch(batch)
    spec = RunSpec(
        dataset="three-spheres",
        dataset_kwargs={"n": n, "seed": seed},
        test_fraction=0.0,
        model=ModelSpec(kind=kind, hidden=hidden, activation=activation, augment_dim=augment_dim),
        solver=SolverSpec(solver=solver, rtol=rtol, atol=rtol),
        train=TrainSpec(epochs=epochs, lr=lr, seed=seed),
    )
    fitted = run(spec, progress=False).fitted
    test = three_spheres(n=batch, seed=seed + TEST_SEED_OFFSET)
    acc = fitted.history[-1]["train_acc"] if fitted.history else math.nan
    return problem_from_model(
        fitted.model,
        torch.as_tensor(test.x),
        torch.as_tensor(test.y),
        name="trained-node",
        description=f"{kind} (hidden {hidden}) trained {epochs} epochs on three spheres "
        f"(n={n}, seed {seed}, {solver} rtol {rtol:g}, train acc {acc:.3f}); "
        f"flow of {batch} test points",
        model_spec=spec.model,
    )


def problem_from_run(folder: str | Path, *, batch: int = 256) -> StudyProblem:
    """The Neural ODE of a finished trial folder (`pyanode train --out`, `pyanode.run(spec,
    out)`, a sweep's or a reproduction's trial), on up to `batch` points of its test set (its
    training data when it has none). The model is rebuilt from its spec and stored weights:
    nothing is trained again.

    Raises:
        FileNotFoundError: if `folder` holds no finished trial.
        SpecError: if the trial failed, its model has no single ODE solve, or its backend is
            not torch.
    """
    from pyanode.experiments.runner import load_data, load_fitted
    from pyanode.experiments.store import read_trial

    check_batch(batch)
    folder = Path(folder)
    fitted = load_fitted(folder)
    spec = read_trial(folder).spec
    train_data, test_data = load_data(spec)
    data = test_data if test_data is not None else train_data
    x = torch.as_tensor(data.x[:batch])
    y = torch.as_tensor(data.y[:batch])
    return problem_from_model(
        fitted.model.cpu(),
        x,
        y,
        name=f"run:{folder.name}",
        description=f"{spec.model.kind} of run {str(folder)!r} (stored weights) on "
        f"{len(x)} {'test' if test_data is not None else 'training'} points of {spec.dataset}",
        model_spec=spec.model,
    )
