"""The learned flow drawn in its state space: Dupont et al., "Augmented Neural ODEs" (2019), the
trajectories (Figs. 2 and 9, `dupont-flows`) and the features during training (Figs. 6 and 10,
`dupont-features`) of NODE, ANODE and ResNet on the toy problems (`pyanode.experiments.dupont`).

`dupont-flows`:

- Fig. 2(b-d): a NODE fitted to the identity and to g_1d (flow only), and a ResNet fitted to
  g_1d, whose discrete states may jump across each other;
- Fig. 9: NODE and ANODE fitted to g(x) (concentric spheres, linear readout) in d = 1 and d = 2,
  the ANODE with one augmented dimension so that its flow is drawn in its augmented space (2-D
  for d = 1, 3-D for d = 2); an ANODE on g_1d is drawn in its (x, a) plane too.

Stored per trial: `ts` (T,) and `trajectories` (T, N, state dim) of `n_probe` training points
(`probe_x`, `probe_y`), `grid_trajectories` of evenly spaced 1-D starts (`grid_x`), and for the
ResNet `layer_states` (depth + 1, N, d) instead of continuous trajectories.

`dupont-features`: NODE and ANODE (one augmented dimension, so its features are drawn in 3-D) are
trained on g(x) (concentric spheres, d = 2) and on the separable control set; the features
phi(x) = h(T) of `n_probe` training points are stored at `snapshots` evenly spaced iterations,
the first before training and the last after it (`snapshot_iterations` (S,), `snapshots`
(S, N, state dim), `probe_x`, `probe_y` in each trial's arrays.npz).
"""

from __future__ import annotations

import functools
import math
from dataclasses import dataclass
from typing import Any, ClassVar

import numpy as np
import torch

from pyanode._errors import SpecError
from pyanode._validate import check_int, check_subset
from pyanode.backends import TorchFitted
from pyanode.data import Dataset
from pyanode.experiments.dupont import config_data, config_model, shared_setting, toy_trial
from pyanode.experiments.reproduce import Reproduction, check_positive
from pyanode.experiments.runner import Record, Trial
from pyanode.specs import setting
from pyanode.torch import ResNet

# -- dupont-flows: trajectories (Figs. 2, 9) ------------------------------------------------------
# panel -> the models drawn for it
PANEL_MODELS = {
    "identity": ("node",),
    "g1d": ("node", "anode", "resnet"),
    "spheres-1d": ("node", "anode"),
    "spheres-2d": ("node", "anode"),
}
FLOW_PANELS = tuple(PANEL_MODELS)


@dataclass(frozen=True)
class FlowsConfig:
    """The settings of `dupont-flows`; `PAPER` holds the paper's values where they differ."""

    PAPER: ClassVar[dict[str, Any]] = {"epochs": 50}

    panels: tuple[str, ...] = setting(FLOW_PANELS, "which panels")
    seed: int = setting(0, "seed of the weights and batches")
    epochs: int = setting(10, "epochs on the spheres")
    g1d_epochs: int = setting(150, "epochs on g_1d and the identity")
    g1d_points: int = setting(100, "points of g_1d / identity")
    n_inner: int = shared_setting("n_inner")
    n_outer: int = shared_setting("n_outer")
    batch_size: int = shared_setting("batch_size")
    lr: float = shared_setting("lr")
    hidden: int = setting(32, "hidden width of field and ResNet")
    augment_dim: int = setting(1, "ANODE's zeros (1: drawable)")
    resnet_depth: int = setting(5, "residual blocks of the ResNet")
    n_probe: int = setting(150, "training points whose paths are drawn")
    n_times: int = setting(50, "times at which the paths are stored")
    data_seed: int = setting(0, "seed of the datasets")
    threads: int = shared_setting("threads")

    def __post_init__(self) -> None:
        check_positive(
            self,
            ("epochs", "g1d_epochs", "g1d_points", "n_inner", "n_outer", "batch_size", "n_probe"),
        )
        check_subset("panels", self.panels, FLOW_PANELS, error=SpecError)
        check_int("n_times", self.n_times, low=2, error=SpecError)
        trials_flows(self)  # building the specs validates the training settings


def flow_arrays(
    fitted: TorchFitted, train: Dataset, test: Dataset | None, *, n_probe: int, n_times: int
) -> dict[str, np.ndarray]:
    """The arrays of a flows trial: paths of the first `n_probe` training points (`ts`,
    `trajectories`) and, in 1-D, of evenly spaced starts (`grid_x`, `grid_trajectories`); for
    the ResNet the hidden state after each block (`layer_states`, `grid_layer_states`)."""
    probe_x = train.x[:n_probe]
    grid = np.linspace(-1.6, 1.6, 33, dtype=np.float32)[:, None]
    out: dict[str, np.ndarray] = {}
    if train.n_features == 1:
        out["grid_x"] = grid
    if isinstance(fitted.model, ResNet):  # discrete: the hidden state after each block
        out["layer_states"] = _layer_states(fitted.model, probe_x)
        if train.n_features == 1:
            out["grid_layer_states"] = _layer_states(fitted.model, grid)
        return out
    ts = np.linspace(0.0, 1.0, n_times)
    out["ts"] = ts
    out["trajectories"] = fitted.trajectories(probe_x, ts)
    if train.n_features == 1:
        out["grid_trajectories"] = fitted.trajectories(grid, ts)
    return out


@torch.no_grad()
def _layer_states(model: ResNet, x: np.ndarray) -> np.ndarray:
    model.eval()
    h = model.input_map(torch.as_tensor(x))
    states = [h]
    for block in model.blocks:
        h = block(h)
        states.append(h)
    return torch.stack(states).numpy()


def trials_flows(config: FlowsConfig) -> list[Trial]:
    """One trial per panel and model drawn for it, at one seed."""
    arrays = functools.partial(flow_arrays, n_probe=config.n_probe, n_times=config.n_times)
    record = Record(iterations=True, probe=config.n_probe, arrays=arrays)
    out = []
    for panel in config.panels:
        data = config_data(panel, config)
        epochs = config.g1d_epochs if panel in ("g1d", "identity") else config.epochs
        for model in PANEL_MODELS[panel]:
            spec = config_model(model, config)
            out.append(toy_trial(panel, model, config.seed, data, spec, config, epochs, record))
    return out


def report_flows(summary: dict[str, dict[str, Any]]) -> str:
    """One line per trial: its final training MSE and forward NFE."""
    return "\n".join(
        f"{key}: final training MSE {r['train_loss']:.4f}, NFE {r['nfe_forward']:.0f}"
        for key, r in summary.items()
    )


DUPONT_FLOWS = Reproduction(
    name="dupont-flows",
    config=FlowsConfig,
    trials=trials_flows,
    report=report_flows,
    figures="pyanode.plots.dupont:plot_flows",
)


# -- dupont-features: features during training (Figs. 6, 10) --------------------------------------
FEATURE_PANELS = ("spheres-2d", "separable")
FEATURE_MODELS = ("node", "anode")


@dataclass(frozen=True)
class FeaturesConfig:
    """The settings of `dupont-features`; `PAPER` holds the paper's values where they differ."""

    PAPER: ClassVar[dict[str, Any]] = {"epochs": 50}

    panels: tuple[str, ...] = setting(FEATURE_PANELS, "which datasets")
    models: tuple[str, ...] = setting(FEATURE_MODELS, "which models")
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
        check_subset("panels", self.panels, FEATURE_PANELS, error=SpecError)
        check_subset("models", self.models, FEATURE_MODELS, error=SpecError)
        check_int("snapshots", self.snapshots, low=2, error=SpecError)
        trials_features(self)  # building the specs validates the training settings


def snapshot_iterations(n_iterations: int, snapshots: int) -> list[int]:
    """`snapshots` evenly spaced iterations from 0 (before training) to `n_iterations`."""
    return sorted({round(i * n_iterations / (snapshots - 1)) for i in range(snapshots)})


def trials_features(config: FeaturesConfig) -> list[Trial]:
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
        data = config_data(panel, config)
        for model in config.models:
            spec = config_model(model, config)
            out.append(
                toy_trial(panel, model, config.seed, data, spec, config, config.epochs, record)
            )
    return out


def report_features(summary: dict[str, dict[str, Any]]) -> str:
    """One line per trial: its final training MSE."""
    return "\n".join(
        f"{key}: final training MSE {r['train_loss']:.4f}" for key, r in summary.items()
    )


DUPONT_FEATURES = Reproduction(
    name="dupont-features",
    config=FeaturesConfig,
    trials=trials_features,
    report=report_features,
    figures="pyanode.plots.dupont:plot_features",
)
