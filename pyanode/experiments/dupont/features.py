"""How the features evolve during training: Dupont et al., "Augmented Neural ODEs" (2019),
Figs. 6 (NODE) and 10 (ANODE).

NODE and ANODE (one augmented dimension, so its features are drawn in 3-D) are trained on g(x)
(concentric spheres, d = 2) and on the separable control set; the features phi(x) = h(T) of
`n_probe` training points are stored at `snapshots` evenly spaced iterations, the first before
training and the last after it (`snapshot_iterations` (S,), `snapshots` (S, N, state dim),
`probe_x`, `probe_y` in each trial's arrays.npz).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any, ClassVar

import numpy as np

from pyanode.backends import TorchFitted
from pyanode.experiments.dupont._common import Plan
from pyanode.experiments.dupont._experiment import (
    DupontExperiment,
    check_config,
    setting,
    shared_setting,
)
from pyanode.experiments.dupont._toys import toy_data, toy_model, toy_plan, toy_train

PANELS = ("spheres-2d", "separable")
MODELS = ("node", "anode")


@dataclass(frozen=True)
class FeaturesConfig:
    """The settings of `run`; `PAPER` holds the paper's values where they differ."""

    PAPER: ClassVar[dict[str, Any]] = {"epochs": 50}

    panels: tuple[str, ...] = setting(PANELS, "which datasets")
    models: tuple[str, ...] = setting(MODELS, "which models")
    seed: int = setting(0, "seed of the weights and batches")
    epochs: int = setting(10, "training epochs")
    snapshots: int = setting(5, "feature snapshots, first and last incl.")
    n_inner: int = shared_setting("n_inner")
    n_outer: int = shared_setting("n_outer")
    batch_size: int = shared_setting("batch_size")
    lr: float = shared_setting("lr")
    hidden: int = setting(32, "hidden width of the field")
    augment_dim: int = setting(1, "ANODE's zeros (1: drawable in 3-D)")
    n_probe: int = setting(600, "training points whose features are kept")
    data_seed: int = setting(0, "seed of the datasets")
    threads: int | None = shared_setting("threads")

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
        train = toy_train(config, config.seed, config.epochs)

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


def report(results: dict[str, dict[str, Any]]) -> str:
    """One line per trial: its final training MSE."""
    return "\n".join(
        f"{key}: final training MSE {r['train_loss']:.4f}" for key, r in results.items()
    )


EXPERIMENT = DupontExperiment(
    name="dupont-features",
    describe="Dupont et al. Figs. 6 and 10: the features of NODE and ANODE at several "
    "iterations of training on concentric spheres (d = 2) and on a separable control set",
    config=FeaturesConfig,
    plans=plans,
    figures="plot_features",
    report=report,
)
describe, run = EXPERIMENT.describe, EXPERIMENT.run
add_arguments, main = EXPERIMENT.add_arguments, EXPERIMENT.main
