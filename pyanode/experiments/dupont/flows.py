"""Trajectories of learned flows: Dupont et al., "Augmented Neural ODEs" (2019), Figs. 2 and 9.

- Fig. 2(b-d): a NODE fitted to the identity and to g_1d (flow only), and a ResNet fitted to
  g_1d, whose discrete states may jump across each other;
- Fig. 9: NODE and ANODE fitted to g(x) (concentric spheres, linear readout) in d = 1 and d = 2,
  the ANODE with one augmented dimension so that its flow is drawn in its augmented space (2-D
  for d = 1, 3-D for d = 2); an ANODE on g_1d is drawn in its (x, a) plane too.

Stored per trial: `ts` (T,) and `trajectories` (T, N, state dim) of `n_probe` training points
(`probe_x`, `probe_y`), `grid_trajectories` of evenly spaced 1-D starts (`grid_x`), and for the
ResNet `layer_states` (depth + 1, N, d) instead of continuous trajectories.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass
from typing import Any, ClassVar

import numpy as np
import torch

from pyanode._errors import SpecError
from pyanode._validate import check_int
from pyanode.backends import TorchFitted
from pyanode.data import Dataset
from pyanode.experiments.dupont import shared_setting, toy_data, toy_model, toy_trial
from pyanode.experiments.reproduce import Reproduction, check_positive, check_subset
from pyanode.experiments.runner import Record, Trial
from pyanode.specs import setting
from pyanode.torch import ResNet

# panel -> the models drawn for it
PANEL_MODELS = {
    "identity": ("node",),
    "g1d": ("node", "anode", "resnet"),
    "spheres-1d": ("node", "anode"),
    "spheres-2d": ("node", "anode"),
}
PANELS = tuple(PANEL_MODELS)


@dataclass(frozen=True)
class FlowsConfig:
    """The settings of `dupont-flows`; `PAPER` holds the paper's values where they differ."""

    PAPER: ClassVar[dict[str, Any]] = {"epochs": 50}

    panels: tuple[str, ...] = setting(PANELS, "which panels")
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
        check_subset(self, "panels", PANELS)
        check_int("n_times", self.n_times, low=2, error=SpecError)
        trials(self)  # building the specs validates the training settings


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


def trials(config: FlowsConfig) -> list[Trial]:
    """One trial per panel and model drawn for it, at one seed."""
    arrays = functools.partial(flow_arrays, n_probe=config.n_probe, n_times=config.n_times)
    record = Record(iterations=True, probe=config.n_probe, arrays=arrays)
    out = []
    for panel in config.panels:
        data = toy_data(
            panel,
            n_inner=config.n_inner,
            n_outer=config.n_outer,
            n_points=config.g1d_points,
            seed=config.data_seed,
        )
        epochs = config.g1d_epochs if panel in ("g1d", "identity") else config.epochs
        for model in PANEL_MODELS[panel]:
            spec = toy_model(
                model, hidden=config.hidden, augment_dim=config.augment_dim,
                depth=config.resnet_depth,
            )  # fmt: skip
            out.append(toy_trial(panel, model, config.seed, data, spec, config, epochs, record))
    return out


def report(summary: dict[str, dict[str, Any]]) -> str:
    """One line per trial: its final training MSE and forward NFE."""
    return "\n".join(
        f"{key}: final training MSE {r['train_loss']:.4f}, NFE {r['nfe_forward']:.0f}"
        for key, r in summary.items()
    )


EXPERIMENT = Reproduction(
    name="dupont-flows",
    config=FlowsConfig,
    trials=trials,
    report=report,
    figures="pyanode.plots.dupont:plot_flows",
)
