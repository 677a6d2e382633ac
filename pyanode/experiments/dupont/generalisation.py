"""Generalisation of NODE and ANODE on g(x): Dupont et al., "Augmented Neural ODEs" (2019),
Fig. 11a (the value each point of the input plane is mapped to) and Fig. 11c (the validation
loss when a slice of the input space is held out).

- panel `spheres-2d`: NODE and ANODE trained on all of concentric spheres (d = 2); the stored
  arrays hold their predictions on a `grid` x `grid` lattice of [-extent, extent]^2 (`grid_u`,
  `grid_v`, `grid_prediction`) and a subset of the training points (`train_x`, `train_y`);
- panel `slice-removed`: the points whose polar angle lies in [0, pi/5] are removed from the
  training set and form the validation set (`pyanode.data.slice_removed_split`); the validation
  MSE is stored every `eval_every` iterations (`val_loss` in iterations.jsonl).
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, ClassVar

import numpy as np

from pyanode.backends import TorchFitted
from pyanode.data import Dataset, slice_removed_split
from pyanode.experiments.dupont._common import Plan
from pyanode.experiments.dupont._experiment import (
    DupontExperiment,
    check_config,
    setting,
    shared_setting,
)
from pyanode.experiments.dupont._results import group, read_trials, stack
from pyanode.experiments.dupont._toys import toy_data, toy_model, toy_plan, toy_train

MODELS = ("node", "anode")


@dataclass(frozen=True)
class GeneralisationConfig:
    """The settings of `run`; `PAPER` holds the paper's values where they differ."""

    PAPER: ClassVar[dict[str, Any]] = {"seeds": 20, "epochs": 50, "map_epochs": 50}

    models: tuple[str, ...] = setting(MODELS, "which models")
    seeds: int = setting(3, "seeds of the slice-removed runs")
    epochs: int = setting(10, "epochs of the slice-removed runs")
    map_epochs: int = setting(20, "epochs of the prediction-map runs")
    angle_lo: float = setting(0.0, "removed slice: first angle (rad)")
    angle_hi: float = setting(math.pi / 5, "removed slice: last angle")
    eval_every: int = setting(5, "iterations between validation losses")
    n_inner: int = shared_setting("n_inner")
    n_outer: int = shared_setting("n_outer")
    batch_size: int = shared_setting("batch_size")
    lr: float = shared_setting("lr")
    hidden: int = setting(32, "hidden width of the field")
    augment_dim: int = setting(5, "zeros appended by ANODE")
    grid: int = setting(120, "points per axis of the prediction map")
    extent: float = setting(2.0, "the map covers [-extent, extent]^2")
    data_seed: int = setting(0, "seed of the dataset")
    threads: int | None = shared_setting("threads")

    def __post_init__(self) -> None:
        check_config(
            self,
            ("seeds", "epochs", "map_epochs", "eval_every", "n_inner", "n_outer", "grid"),
            {"models": MODELS},
        )


def map_arrays(
    data: Dataset, grid: int, extent: float
) -> Callable[[TorchFitted], dict[str, np.ndarray]]:
    """The `arrays` hook of a map trial: predictions on the lattice and some training points."""
    u = np.linspace(-extent, extent, grid, dtype=np.float32)
    uu, vv = np.meshgrid(u, u)
    points = np.stack([uu.ravel(), vv.ravel()], axis=1)

    def arrays(fitted: TorchFitted) -> dict[str, np.ndarray]:
        prediction = fitted.predict(points)[:, 0].reshape(grid, grid)
        return {
            "grid_u": u,
            "grid_v": u,
            "grid_prediction": prediction,
            "train_x": data.x[:600],
            "train_y": data.y[:600],
        }

    return arrays


def plans(config: GeneralisationConfig) -> list[Plan]:
    full = toy_data(
        "spheres-2d", n_inner=config.n_inner, n_outer=config.n_outer, seed=config.data_seed
    )
    angles = (config.angle_lo, config.angle_hi)
    train, validation = slice_removed_split(full[0], angle_range=angles)
    sliced = (train, full[1], full[2])
    out = []
    for model in config.models:
        spec = toy_model(model, hidden=config.hidden, augment_dim=config.augment_dim)
        fit = toy_train(config, 0, config.map_epochs)
        arrays = map_arrays(full[0], config.grid, config.extent)
        out.append(toy_plan("spheres-2d", model, 0, full, spec, fit, arrays=arrays))
        for seed in range(config.seeds):
            fit = toy_train(config, seed, config.epochs)
            out.append(
                toy_plan(
                    "slice-removed",
                    model,
                    seed,
                    sliced,
                    spec,
                    fit,
                    validation=validation,
                    log_kwargs={"validation": validation, "eval_every": config.eval_every},
                    extra={"angle_range": list(angles), "n_validation": len(validation)},
                )  # fmt: skip
            )
    return out


def summarise(out: Path) -> dict[str, Any]:
    """Per model: final training and validation MSE of the slice-removed runs (mean, std over
    seeds), and the training MSE of the map run."""
    summary: dict[str, Any] = {}
    for (panel, model), trials in group(read_trials(out), MODELS).items():
        entry = summary.setdefault(model, {})
        train = np.array([t.result["train_loss"] for t in trials])
        if panel == "slice-removed":
            val = stack(trials, "val_loss")
            val = val[:, ~np.isnan(val).any(axis=0)]
            entry.update(
                slice_train_loss_mean=float(train.mean()),
                slice_train_loss_std=float(train.std()),
                val_loss_mean=float(val[:, -1].mean()),
                val_loss_std=float(val[:, -1].std()),
                val_loss_min_mean=float(val.min(axis=1).mean()),
                seeds=len(trials),
                n_validation=trials[0].result["n_validation"],
            )
        else:
            entry["map_train_loss"] = float(train.mean())
    return summary


def format_summary(summary: dict[str, Any]) -> str:
    lines = [f"{'model':<6} {'map train MSE':>13} {'slice train MSE':>17} {'validation MSE':>17}"]
    for model, m in summary.items():
        lines.append(
            f"{model:<6} {m.get('map_train_loss', float('nan')):>13.4f} "
            f"{m['slice_train_loss_mean']:>8.4f} +- {m['slice_train_loss_std']:<6.4f}"
            f"{m['val_loss_mean']:>8.4f} +- {m['val_loss_std']:<6.4f}"
        )
    return "\n".join(lines)


EXPERIMENT = DupontExperiment(
    name="dupont-generalisation",
    describe="Dupont et al. Fig. 11a/c: the predictions of NODE and ANODE over the input "
    "plane, and their validation loss on a slice-removed split of concentric spheres (d = 2)",
    config=GeneralisationConfig,
    plans=plans,
    figures="plot_generalisation",
    report=format_summary,
    summarise=summarise,
)
describe, run = EXPERIMENT.describe, EXPERIMENT.run
add_arguments, main = EXPERIMENT.add_arguments, EXPERIMENT.main
