"""What the Dupont et al. reproductions share: the solver, trials with per-iteration records,
pure-flow readouts, and the loop that trains an experiment's plans (the experiments' command
line is in `_experiment`)."""

from __future__ import annotations

import dataclasses
import logging
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

from pyanode.backends import TorchBackend, TorchFitted
from pyanode.data import Dataset
from pyanode.experiments._run import summarise
from pyanode.experiments.dupont._results import (
    ARRAYS,
    CONFIG,
    RESULT,
    TIMING,
    read_result,
    save_arrays,
    trial_folder,
    write_iterations,
    write_json,
)
from pyanode.experiments.store import write_run
from pyanode.specs import RunSpec, SolverSpec
from pyanode.torch import Trainer

log = logging.getLogger("pyanode")

# Dupont et al.'s code solves with dopri5 at rtol = atol = 1e-3 (App. E names RK4 with these
# tolerances, but a fixed-step RK4 has neither tolerances nor a varying NFE).
SOLVER = SolverSpec(solver="dp5", rtol=1e-3, atol=1e-3)


class FirstCoordinates(nn.Module):
    """The readout of a pure flow: the first `dim` coordinates of the state, no parameters.

    Prop. 1 of Dupont et al. is about the flow itself: with a learned linear layer after it a
    1-D NODE fits g_1d(x) = -x trivially (weight -1), so g_1d is fitted by the flow alone.
    """

    def __init__(self, dim: int):
        super().__init__()
        self.dim = dim

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        return z[:, : self.dim]


def build(spec: RunSpec, data: Dataset, *, flow_readout: bool = False) -> nn.Module:
    """The model of `spec` for `data` (images get the conv field); with `flow_readout` the
    learned output layer is replaced by `FirstCoordinates` (a pure flow, or ResNet states)."""
    model = TorchBackend().build(spec.model, spec.solver, spec.train, data)
    if flow_readout:
        model.output_map = FirstCoordinates(data.n_features)
    return model


@torch.no_grad()
def evaluate_loss(model: nn.Module, data: Dataset, chunk: int = 4096) -> float:
    """Mean loss of `model` on `data`: MSE for regression, cross-entropy for classification."""
    model.eval()
    x = torch.as_tensor(data.x)
    out = torch.cat([model(x[i : i + chunk]) for i in range(0, len(x), chunk)])
    if data.task == "classification":
        return nn.functional.cross_entropy(out, torch.as_tensor(data.y)).item()
    return nn.functional.mse_loss(out, torch.as_tensor(data.y).reshape(out.shape)).item()


@torch.no_grad()
def features(model: nn.Module, x: np.ndarray) -> np.ndarray:
    """The features (final ODE state, or ResNet hidden state) of `model` at the points `x`."""
    model.eval()
    return model.features(torch.as_tensor(x)).numpy()


class IterationLog:
    """An `on_batch` hook: one row per training iteration (loss, forward and backward NFE), the
    validation loss every `eval_every` iterations, and feature snapshots at `snapshot_at`.

    Arguments:
        validation: data whose loss is measured (also before training, at iteration 0).
        eval_every: iterations between validation losses (0: never).
        probe: points whose features are recorded at the iterations `snapshot_at` (0 = before
            training).
        snapshot_at: iterations at which to record the features of `probe`.
    """

    def __init__(
        self,
        *,
        validation: Dataset | None = None,
        eval_every: int = 0,
        probe: np.ndarray | None = None,
        snapshot_at: Sequence[int] = (),
    ):
        self.validation, self.eval_every = validation, eval_every
        self.probe, self.snapshot_at = probe, frozenset(snapshot_at)
        self.rows: list[dict[str, Any]] = []
        self.snapshots: dict[int, np.ndarray] = {}
        self.iteration = 0

    def start(self, trainer: Trainer) -> None:
        """Record iteration 0 (before any step)."""
        row: dict[str, Any] = {"iteration": 0}
        self._measure(trainer, 0, row)
        if len(row) > 1:
            self.rows.append(row)

    def __call__(self, trainer: Trainer) -> None:
        self.iteration += 1
        row = {"iteration": self.iteration, **trainer.last_step}
        self._measure(trainer, self.iteration, row)
        self.rows.append(row)

    def _measure(self, trainer: Trainer, iteration: int, row: dict[str, Any]) -> None:
        if self.validation is not None and self.eval_every and iteration % self.eval_every == 0:
            row["val_loss"] = evaluate_loss(trainer.model, self.validation)
        if self.probe is not None and iteration in self.snapshot_at:
            self.snapshots[iteration] = features(trainer.model, self.probe)

    def snapshot_arrays(self) -> dict[str, np.ndarray]:
        """`snapshot_iterations` (S,) and `snapshots` (S, N, state dim), in iteration order."""
        its = sorted(self.snapshots)
        if not its:
            return {}
        return {
            "snapshot_iterations": np.array(its),
            "snapshots": np.stack([self.snapshots[i] for i in its]),
        }


def train_trial(
    folder: Path,
    spec: RunSpec,
    train_data: Dataset,
    test_data: Dataset | None = None,
    *,
    flow_readout: bool = False,
    log_kwargs: dict[str, Any] | None = None,
    arrays: Callable[[TorchFitted], dict[str, np.ndarray]] | None = None,
    extra: dict[str, Any] | None = None,
) -> dict[str, Any]:
    """Train one trial into `folder`, or return its stored result if `folder` already holds a
    finished trial of the same spec.

    Arguments:
        folder: the trial folder (see `_results`).
        spec: the run; its dataset fields describe `train_data` (which is passed in, so that
            experiments can use splits the registry does not name).
        train_data, test_data: the data (test: per-epoch `test_loss` in the history).
        flow_readout: fit the flow itself (`FirstCoordinates` readout) instead of a linear layer.
        log_kwargs: keyword arguments of `IterationLog` (validation, probe, snapshots).
        arrays: computes arrays to store from the fitted model (trajectories, maps).
        extra: plain values added to result.json (e.g. the split, the readout).

    Returns:
        The stored result: the last epoch's metrics, `n_parameters`, `seconds_total`, the
        final-iteration `nfe_forward_last` and `loss_last`, and `extra`.
    """
    if (folder / RESULT).exists() and (folder / "spec.toml").exists():
        if RunSpec.from_toml((folder / "spec.toml").read_text(encoding="utf-8")) == spec:
            return read_result(folder)
        log.info("retraining %s: its stored spec differs", folder)
        (folder / RESULT).unlink()
    model = build(spec, train_data, flow_readout=flow_readout)
    trainer = Trainer(model, spec.train, train_data, test_data)
    record = IterationLog(**(log_kwargs or {}))
    start = time.perf_counter()
    record.start(trainer)
    trainer.run(on_batch=record, progress=False)
    fitted = TorchFitted(trainer)
    metrics = summarise(fitted.history, fitted)
    last = record.rows[-1]
    metrics.update(
        backend="torch",
        wall_seconds=time.perf_counter() - start,
        iterations=record.iteration,
        loss_last=last["loss"],
        nfe_forward_last=last["nfe_forward"],
        readout="flow" if flow_readout else "linear",
        **(extra or {}),
    )
    write_iterations(folder, record.rows)
    stored = {**record.snapshot_arrays(), **(arrays(fitted) if arrays else {})}
    if stored:
        save_arrays(folder / ARRAYS, stored)
    write_run(folder, spec, fitted.history, metrics)
    return metrics


@dataclasses.dataclass
class Plan:
    """One trial of an experiment: where it goes, its spec, its data and `train_trial` options."""

    panel: str
    model: str
    seed: int
    spec: RunSpec
    train_data: Dataset
    test_data: Dataset | None = None
    options: dict[str, Any] = dataclasses.field(default_factory=dict)


def run_plans(out: Path, config: Any, plans: Sequence[Plan]) -> dict[str, dict[str, Any]]:
    """Train every plan (skipping finished ones), store the config and the wall times.

    Returns:
        The stored result of each trial, keyed `<panel>/<model>/seed-<s>`.
    """
    out = Path(out)
    write_json(out / CONFIG, dataclasses.asdict(config))
    results, seconds = {}, {}
    start = time.perf_counter()
    for i, plan in enumerate(plans, 1):
        key = f"{plan.panel}/{plan.model}/seed-{plan.seed}"
        log.info("[%d/%d] %s", i, len(plans), key)
        tick = time.perf_counter()
        folder = trial_folder(out, plan.panel, plan.model, plan.seed)
        results[key] = train_trial(
            folder, plan.spec, plan.train_data, plan.test_data, **plan.options
        )
        seconds[key] = time.perf_counter() - tick
    write_json(out / TIMING, {"seconds": time.perf_counter() - start, "trials": seconds})
    return results
