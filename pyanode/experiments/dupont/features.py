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

from pyanode._errors import SpecError
from pyanode._validate import check_int
from pyanode.experiments.dupont import shared_setting, toy_data, toy_model, toy_trial
from pyanode.experiments.reproduce import Reproduction, check_positive, check_subset
from pyanode.experiments.runner import Record, Trial
from pyanode.specs import setting

PANELS = ("spheres-2d", "separable")
MODELS = ("node", "anode")


@dataclass(frozen=True)
class FeaturesConfig:
    """The settings of `dupont-features`; `PAPER` holds the paper's values where they differ."""

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
    threads: int = shared_setting("threads")

    def __post_init__(self) -> None:
        check_positive(self, ("epochs", "n_inner", "n_outer", "batch_size", "n_probe"))
        check_subset(self, "panels", PANELS)
        check_subset(self, "models", MODELS)
        check_int("snapshots", self.snapshots, low=2, error=SpecError)
        trials(self)  # building the specs validates the training settings


def snapshot_iterations(n_iterations: int, snapshots: int) -> list[int]:
    """`snapshots` evenly spaced iterations from 0 (before training) to `n_iterations`."""
    return sorted({round(i * n_iterations / (snapshots - 1)) for i in range(snapshots)})


def trials(config: FeaturesConfig) -> list[Trial]:
    """Every panel x model, with feature snapshots of the first `n_probe` training points."""
    # both panels hold n_inner + n_outer points
    n_iterations = config.epochs * math.ceil((config.n_inner + config.n_outer) / config.batch_size)
    record = Record(
        iterations=True,
        probe=config.n_probe,
        snapshot_at=tuple(snapshot_iterations(n_iterations, config.snapshots)),
    )
    out = []
    for panel in config.panels:
        data = toy_data(
            panel, n_inner=config.n_inner, n_outer=config.n_outer, seed=config.data_seed
        )
        for model in config.models:
            spec = toy_model(model, hidden=config.hidden, augment_dim=config.augment_dim)
            out.append(
                toy_trial(panel, model, config.seed, data, spec, config, config.epochs, record)
            )
    return out


def report(summary: dict[str, dict[str, Any]]) -> str:
    """One line per trial: its final training MSE."""
    return "\n".join(
        f"{key}: final training MSE {r['train_loss']:.4f}" for key, r in summary.items()
    )


EXPERIMENT = Reproduction(
    name="dupont-features",
    config=FeaturesConfig,
    trials=trials,
    report=report,
    figures="pyanode.plots.dupont:plot_features",
)
