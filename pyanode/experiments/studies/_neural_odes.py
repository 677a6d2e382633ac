"""Neural ODE problems of the studies: a model's flow with its loss, a briefly trained NODE, and
the model of a stored run."""

from __future__ import annotations

import json
import logging
import math
from pathlib import Path
from typing import Any

import torch
from torch import nn

from pyanode._errors import SpecError
from pyanode.experiments.studies._problem import OutputLoss, StudyProblem, check_batch
from pyanode.specs import ModelSpec, RunSpec, SolverSpec, TrainSpec

log = logging.getLogger("pyanode")


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


TEST_SEED_OFFSET = 1000  # the test inputs are an independent draw, as in table1


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
    from pyanode.backends import TorchBackend
    from pyanode.data import three_spheres

    check_batch(batch)
    model_spec = ModelSpec(kind=kind, hidden=hidden, activation=activation, augment_dim=augment_dim)
    solver_spec = SolverSpec(solver=solver, rtol=rtol, atol=rtol)
    train_spec = TrainSpec(epochs=epochs, lr=lr, seed=seed)
    data = three_spheres(n=n, seed=seed)
    fitted = TorchBackend().fit(model_spec, solver_spec, train_spec, data, progress=False)
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
        model_spec=model_spec,
    )


def problem_from_run(folder: str | Path, *, batch: int = 256) -> StudyProblem:
    """The Neural ODE of a stored run folder (`spec.toml`, `result.json`), on up to `batch`
    points of its test split (its training data when it has none).

    The weights come from the folder's `checkpoint.pt` when there is one; otherwise the run is
    trained again from its spec (training is deterministic on the CPU for a given seed) and the
    final training loss is checked against the stored `result.json`.

    Raises:
        FileNotFoundError: if `folder` has no `spec.toml`.
        SpecError: if the run's model has no single ODE solve, its backend is not torch, or the
            retrained model does not reproduce the stored loss.
    """
    from pyanode.backends import TorchBackend
    from pyanode.experiments._run import load_split
    from pyanode.experiments.checkpoint import CHECKPOINT, load_checkpoint

    check_batch(batch)
    folder = Path(folder)
    spec_file = folder / "spec.toml"
    if not spec_file.is_file():
        raise FileNotFoundError(
            f"run folder {str(folder)!r} has no spec.toml; pass a folder written by "
            "`pyanode train --out` or `pyanode.run(spec, out)`"
        )
    spec = RunSpec.from_toml(spec_file.read_text(encoding="utf-8"))
    train_data, test_data = load_split(spec)
    backend = TorchBackend()
    checkpoint = folder / CHECKPOINT
    if checkpoint.is_file():
        model = backend.build(spec.model, spec.solver, spec.train, train_data)
        model.load_state_dict(load_checkpoint(checkpoint, spec)["trainer"]["model"])
        source = "checkpoint"
    else:
        log.info("study: %s has no %s; training it again from spec.toml", folder, CHECKPOINT)
        fitted = backend.fit(
            spec.model, spec.solver, spec.train, train_data, test_data, progress=False
        )
        _check_retrained(folder, fitted.history)
        model = fitted.model
        source = "retrained from spec.toml"
    data = test_data if test_data is not None else train_data
    x = torch.as_tensor(data.x[:batch])
    y = torch.as_tensor(data.y[:batch])
    return problem_from_model(
        model.cpu(),
        x,
        y,
        name=f"run:{folder.name}",
        description=f"{spec.model.kind} of run {str(folder)!r} ({source}) on "
        f"{len(x)} {'test' if test_data is not None else 'training'} points of {spec.dataset}",
        model_spec=spec.model,
    )


def _check_retrained(folder: Path, history: list[dict[str, Any]]) -> None:
    result_file = folder / "result.json"
    if not result_file.is_file() or not history:
        return
    stored = json.loads(result_file.read_text(encoding="utf-8")).get("train_loss")
    ours = history[-1].get("train_loss")
    if stored is not None and ours is not None and not math.isclose(ours, stored, rel_tol=1e-5):
        raise SpecError(
            f"run {str(folder)!r} retrained from spec.toml ends with train_loss={ours!r}, but "
            f"result.json has {stored!r}: the run cannot be reproduced here; store a "
            "checkpoint.pt with the weights"
        )
