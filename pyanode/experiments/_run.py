"""One trial from a RunSpec: load the data, split it, fit on a backend, summarise."""

from __future__ import annotations

import os
from dataclasses import dataclass
from typing import Any

from pyanode.backends import Fitted, get_backend
from pyanode.data import Dataset, load_dataset, split
from pyanode.experiments.store import write_run
from pyanode.specs import RunSpec


@dataclass
class RunResult:
    """A finished trial: its spec, the fitted model, the data it saw and the final metrics."""

    spec: RunSpec
    fitted: Fitted
    train_data: Dataset
    test_data: Dataset | None
    metrics: dict[str, Any]


def load_split(spec: RunSpec) -> tuple[Dataset, Dataset | None]:
    """The dataset of `spec`, split into train and test by `spec.test_fraction` and the seed."""
    data = load_dataset(spec.dataset, **spec.dataset_kwargs)
    if spec.test_fraction == 0:
        return data, None
    return split(data, test_fraction=spec.test_fraction, seed=spec.train.seed)


def summarise(history: list[dict[str, Any]], fitted: Fitted) -> dict[str, Any]:
    """Final metrics: the last epoch's row, total training seconds and the parameter count."""
    last = dict(history[-1]) if history else {}
    last["seconds_total"] = sum(row["seconds"] for row in history)
    last["seconds_per_epoch"] = last["seconds_total"] / max(len(history), 1)
    last["n_parameters"] = int(fitted.parameters().size)
    return last


def run(spec: RunSpec, out: str | os.PathLike | None = None, **fit_kwargs: Any) -> RunResult:
    """Train the model of `spec` on its dataset; store spec, history and result under `out`."""
    train_data, test_data = load_split(spec)
    backend = get_backend(spec.backend)
    fitted = backend.fit(spec.model, spec.solver, spec.train, train_data, test_data, **fit_kwargs)
    metrics = summarise(fitted.history, fitted)
    metrics["backend"] = backend.name
    if out is not None:
        write_run(out, spec, fitted.history, metrics)
    return RunResult(spec, fitted, train_data, test_data, metrics)
