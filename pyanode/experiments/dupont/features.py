"""How the features evolve during training: Dupont et al., "Augmented Neural ODEs" (2019),
Figs. 6 (NODE) and 10 (ANODE).

NODE and ANODE (one augmented dimension, so its features are drawn in 3-D) are trained on g(x)
(concentric spheres, d = 2) and on the separable control set; the features phi(x) = h(T) of
`n_probe` training points are stored at `snapshots` evenly spaced iterations, the first before
training and the last after it (`snapshot_iterations` (S,), `snapshots` (S, N, state dim),
`probe_x`, `probe_y` in each trial's arrays.npz).
"""

from __future__ import annotations

import argparse
import math
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, ClassVar

import numpy as np

from pyanode.backends import TorchFitted
from pyanode.experiments.dupont._common import (
    Plan,
    add_config_arguments,
    check_config,
    config_from_args,
    load_config,
    run_plans,
)
from pyanode.experiments.dupont._toys import toy_data, toy_model, toy_plan, toy_train

describe = (
    "Dupont et al. Figs. 6 and 10: the features of NODE and ANODE at several iterations of "
    "training on concentric spheres (d = 2) and on a separable control set"
)

PANELS = ("spheres-2d", "separable")
MODELS = ("node", "anode")


@dataclass(frozen=True)
class FeaturesConfig:
    """The settings of `run`; `PAPER` holds the paper's values where they differ."""

    PAPER: ClassVar[dict[str, Any]] = {"epochs": 50}

    panels: tuple[str, ...] = field(default=PANELS, metadata={"help": "which datasets"})
    models: tuple[str, ...] = field(default=MODELS, metadata={"help": "which models"})
    seed: int = field(default=0, metadata={"help": "seed of the weights and batches"})
    epochs: int = field(default=10, metadata={"help": "training epochs"})
    snapshots: int = field(default=5, metadata={"help": "feature snapshots, first and last incl."})
    n_inner: int = field(default=1000, metadata={"help": "points in the inner ball"})
    n_outer: int = field(default=2000, metadata={"help": "points in the outer annulus"})
    batch_size: int = field(default=64, metadata={"help": "mini-batch size"})
    lr: float = field(default=1e-3, metadata={"help": "Adam learning rate"})
    hidden: int = field(default=32, metadata={"help": "hidden width of the field"})
    augment_dim: int = field(default=1, metadata={"help": "ANODE's zeros (1: drawable in 3-D)"})
    n_probe: int = field(default=600, metadata={"help": "training points whose features are kept"})
    data_seed: int = field(default=0, metadata={"help": "seed of the datasets"})
    threads: int | None = field(
        default=1,
        metadata={"help": "torch threads (0: torch's default)", "type": int},
    )

    def __post_init__(self) -> None:
        check_config(
            self,
            ("epochs", "n_inner", "n_outer", "batch_size", "n_probe"),
            {"panels": PANELS, "models": MODELS},
        )
        if self.snapshots < 2:
            raise ValueError(f"snapshots must be an integer >= 2, got {self.snapshots!r}")


def snapshot_iterations(n_iterations: int, snapshots: int) -> list[int]:
    """`snapshots` evenly spaced iterations from 0 (before training) to `n_iterations`."""
    return sorted({round(i * n_iterations / (snapshots - 1)) for i in range(snapshots)})


def plans(config: FeaturesConfig) -> list[Plan]:
    out = []
    for panel in config.panels:
        data = toy_data(
            panel, n_inner=config.n_inner, n_outer=config.n_outer, seed=config.data_seed
        )
        dataset = data[0]
        n_iterations = config.epochs * math.ceil(len(dataset) / config.batch_size)
        probe_x, probe_y = dataset.x[: config.n_probe], dataset.y[: config.n_probe]
        train = toy_train(
            config.seed,
            config.epochs,
            batch_size=config.batch_size,
            lr=config.lr,
            threads=config.threads,
        )

        def arrays(fitted: TorchFitted, x=probe_x, y=probe_y) -> dict[str, np.ndarray]:
            return {"probe_x": x, "probe_y": y}

        for model in config.models:
            spec = toy_model(model, hidden=config.hidden, augment_dim=config.augment_dim)
            log_kwargs = {
                "probe": probe_x,
                "snapshot_at": snapshot_iterations(n_iterations, config.snapshots),
            }
            out.append(
                toy_plan(
                    panel,
                    model,
                    config.seed,
                    data,
                    spec,
                    train,
                    log_kwargs=log_kwargs,
                    arrays=arrays,
                )  # fmt: skip
            )
    return out


def run(config: FeaturesConfig, out: str | Path) -> dict[str, dict[str, Any]]:
    """Train every trial of `config` into `out` (finished ones are kept).

    Returns:
        The stored result of each trial, keyed `<panel>/<model>/seed-<s>`.
    """
    return run_plans(Path(out), config, plans(config))


def add_arguments(parser: argparse.ArgumentParser) -> None:
    add_config_arguments(parser, FeaturesConfig, "dupont-features")


def main(args: argparse.Namespace) -> int:
    from pyanode.plots.dupont import plot_features

    start = time.perf_counter()
    if args.plot_only:
        load_config(FeaturesConfig, args.out)
    else:
        results = run(config_from_args(FeaturesConfig, args), args.out)
        for key, r in results.items():
            print(f"{key}: final training MSE {r['train_loss']:.4f}")
    files = plot_features(args.out)
    print(f"{time.perf_counter() - start:.0f} s; figures: {', '.join(map(str, files))}")
    return 0
