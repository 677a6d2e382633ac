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

import argparse
import math
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, ClassVar

import numpy as np

from pyanode.backends import TorchFitted
from pyanode.data import Dataset, slice_removed_split
from pyanode.experiments.dupont._common import (
    Plan,
    add_config_arguments,
    check_config,
    config_from_args,
    load_config,
    run_plans,
)
from pyanode.experiments.dupont._results import group, read_trials, stack, write_json
from pyanode.experiments.dupont._toys import toy_data, toy_model, toy_plan, toy_train

describe = (
    "Dupont et al. Fig. 11a/c: the predictions of NODE and ANODE over the input plane, and "
    "their validation loss on a slice-removed split of concentric spheres (d = 2)"
)

MODELS = ("node", "anode")
SUMMARY = "summary.json"


@dataclass(frozen=True)
class GeneralisationConfig:
    """The settings of `run`; `PAPER` holds the paper's values where they differ."""

    PAPER: ClassVar[dict[str, Any]] = {"seeds": 20, "epochs": 50, "map_epochs": 50}

    models: tuple[str, ...] = field(default=MODELS, metadata={"help": "which models"})
    seeds: int = field(default=3, metadata={"help": "seeds of the slice-removed runs"})
    epochs: int = field(default=10, metadata={"help": "epochs of the slice-removed runs"})
    map_epochs: int = field(default=20, metadata={"help": "epochs of the prediction-map runs"})
    angle_lo: float = field(default=0.0, metadata={"help": "removed slice: first angle (rad)"})
    angle_hi: float = field(default=math.pi / 5, metadata={"help": "removed slice: last angle"})
    eval_every: int = field(default=5, metadata={"help": "iterations between validation losses"})
    n_inner: int = field(default=1000, metadata={"help": "points in the inner ball"})
    n_outer: int = field(default=2000, metadata={"help": "points in the outer annulus"})
    batch_size: int = field(default=64, metadata={"help": "mini-batch size"})
    lr: float = field(default=1e-3, metadata={"help": "Adam learning rate"})
    hidden: int = field(default=32, metadata={"help": "hidden width of the field"})
    augment_dim: int = field(default=5, metadata={"help": "zeros appended by ANODE"})
    grid: int = field(default=120, metadata={"help": "points per axis of the prediction map"})
    extent: float = field(default=2.0, metadata={"help": "the map covers [-extent, extent]^2"})
    data_seed: int = field(default=0, metadata={"help": "seed of the dataset"})
    threads: int | None = field(
        default=1,
        metadata={"help": "torch threads (0: torch's default)", "type": int},
    )

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
        fit = toy_train(
            0, config.map_epochs, batch_size=config.batch_size, lr=config.lr,
            threads=config.threads,
        )  # fmt: skip
        arrays = map_arrays(full[0], config.grid, config.extent)
        out.append(toy_plan("spheres-2d", model, 0, full, spec, fit, arrays=arrays))
        for seed in range(config.seeds):
            fit = toy_train(
                seed, config.epochs, batch_size=config.batch_size, lr=config.lr,
                threads=config.threads,
            )  # fmt: skip
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
    seeds), and the training MSE of the map run; stored as `summary.json`."""
    summary: dict[str, Any] = {}
    groups = group(read_trials(out))
    for (panel, model), trials in sorted(groups.items(), key=lambda kv: MODELS.index(kv[0][1])):
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
    write_json(out / SUMMARY, summary)
    return summary


def run(config: GeneralisationConfig, out: str | Path) -> dict[str, Any]:
    """Train every trial of `config` into `out` (finished ones are kept) and summarise.

    Returns:
        The summary (see `summarise`).
    """
    out = Path(out)
    run_plans(out, config, plans(config))
    return summarise(out)


def format_summary(summary: dict[str, Any]) -> str:
    lines = [f"{'model':<6} {'map train MSE':>13} {'slice train MSE':>17} {'validation MSE':>17}"]
    for model, m in summary.items():
        lines.append(
            f"{model:<6} {m.get('map_train_loss', float('nan')):>13.4f} "
            f"{m['slice_train_loss_mean']:>8.4f} +- {m['slice_train_loss_std']:<6.4f}"
            f"{m['val_loss_mean']:>8.4f} +- {m['val_loss_std']:<6.4f}"
        )
    return "\n".join(lines)


def add_arguments(parser: argparse.ArgumentParser) -> None:
    add_config_arguments(parser, GeneralisationConfig, "dupont-generalisation")


def main(args: argparse.Namespace) -> int:
    from pyanode.plots.dupont import plot_generalisation

    start = time.perf_counter()
    if args.plot_only:
        load_config(GeneralisationConfig, args.out)
        summary = summarise(args.out)
    else:
        summary = run(config_from_args(GeneralisationConfig, args), args.out)
    files = plot_generalisation(args.out)
    print(format_summary(summary))
    print(f"{time.perf_counter() - start:.0f} s; figures: {', '.join(map(str, files))}")
    return 0
