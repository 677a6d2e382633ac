"""Loss curves of NODE, ANODE and ResNet on g_1d and on concentric spheres in d = 1 and d = 2:
Dupont et al., "Augmented Neural ODEs" (2019), Figs. 5 and 8.

Every model is trained as regression with an MSE loss on targets -1 / +1 (App. E), Adam with
lr 1e-3 and batches of 64 (App. E.2.1), the MLP field d + 1 -> 32 -> 32 -> d with ReLU, dopri5 at
rtol = atol = 1e-3. ANODE appends 5 zeros, the ResNet has 5 residual blocks of width 32 (the
best settings of App. E.2.1). Spheres: 1000 inner and 2000 outer points, r = 0.5, 1.0, 1.5.

g_1d (Prop. 1, g(-1) = 1, g(1) = -1) is fitted by the flow itself (`FirstCoordinates` readout):
with a learned linear layer after it a 1-D NODE would fit it with weight -1. The spheres are
fitted by the flow followed by a linear layer, as in §2.

Beside the curves, the experiment stores two closed-form references per panel: the loss of the
best constant (the variance of the targets) and, in 1-D, the smallest loss any NODE can reach:
its map x -> L(phi(x)) is monotone (the flow is an increasing homeomorphism of R), so it is
bounded below by the isotonic regression of the targets (increasing only for the pure flow).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, ClassVar

import numpy as np

from pyanode.data import Dataset, load_dataset
from pyanode.experiments.dupont import group, shared_setting, toy_data, toy_model, toy_trial
from pyanode.experiments.reproduce import Reproduction, check_positive, check_subset
from pyanode.experiments.runner import Trial
from pyanode.experiments.store import StoredTrial
from pyanode.specs import ModelSpec, setting

PANELS = ("g1d", "spheres-1d", "spheres-2d")
MODELS = ("node", "anode", "resnet")


@dataclass(frozen=True)
class Toy1dConfig:
    """The settings of `dupont-1d`; `PAPER` holds the paper's values where they differ."""

    PAPER: ClassVar[dict[str, Any]] = {"seeds": 20, "epochs": 50}

    panels: tuple[str, ...] = setting(PANELS, "which panels")
    models: tuple[str, ...] = setting(MODELS, "which models")
    seeds: int = setting(3, "seeds 0..n-1 (the paper: 20)")
    epochs: int = setting(10, "epochs on the spheres (the paper: 50)")
    g1d_epochs: int = setting(150, "epochs on g_1d")
    g1d_points: int = setting(100, "points of g_1d (half at -1)")
    n_inner: int = shared_setting("n_inner")
    n_outer: int = shared_setting("n_outer")
    batch_size: int = shared_setting("batch_size")
    lr: float = shared_setting("lr")
    hidden: int = setting(32, "hidden width of field and ResNet")
    augment_dim: int = setting(5, "zeros appended by ANODE")
    resnet_depth: int = setting(5, "residual blocks of the ResNet")
    data_seed: int = setting(0, "seed of the datasets")
    threads: int = shared_setting("threads")

    def __post_init__(self) -> None:
        check_positive(
            self,
            ("seeds", "epochs", "g1d_epochs", "g1d_points", "n_inner", "n_outer", "batch_size"),
        )
        check_subset(self, "panels", PANELS)
        check_subset(self, "models", MODELS)
        self.model_spec("anode")
        trials(self)  # building the specs validates the training settings

    def model_spec(self, model: str) -> ModelSpec:
        return toy_model(
            model, hidden=self.hidden, augment_dim=self.augment_dim, depth=self.resnet_depth
        )

    def data(self, panel: str) -> tuple[str, dict[str, Any]]:
        """The panel's data: registry name and keyword arguments."""
        return toy_data(
            panel,
            n_inner=self.n_inner,
            n_outer=self.n_outer,
            n_points=self.g1d_points,
            seed=self.data_seed,
        )


def monotone_floor(x: np.ndarray, y: np.ndarray, *, either_direction: bool) -> float:
    """The smallest MSE of a monotone map of 1-D inputs `x` to targets `y`: the isotonic
    regression's (increasing, or the better of increasing and decreasing).

    A 1-D NODE's flow phi is an increasing homeomorphism, so phi (pure flow) is increasing and
    L(phi(x)) (linear readout) is monotone: no NODE can go below this loss on the data.
    """
    from sklearn.isotonic import IsotonicRegression

    xs, ys = np.asarray(x, float).reshape(-1), np.asarray(y, float).reshape(-1)
    losses = []
    for increasing in (True, False) if either_direction else (True,):
        fit = IsotonicRegression(increasing=increasing).fit_transform(xs, ys)
        losses.append(float(np.mean((fit - ys) ** 2)))
    return min(losses)


def references(panel: str, data: Dataset) -> dict[str, float]:
    """`constant`: the best constant's MSE; `node_floor` (1-D only): the best monotone map's."""
    out = {"constant": float(np.var(data.y))}
    if data.n_features == 1:
        out["node_floor"] = monotone_floor(data.x, data.y, either_direction=panel != "g1d")
    return out


def trials(config: Toy1dConfig) -> list[Trial]:
    """Every panel x model x seed."""
    return [
        toy_trial(
            panel,
            model,
            seed,
            config.data(panel),
            config.model_spec(model),
            config,
            config.g1d_epochs if panel == "g1d" else config.epochs,
        )
        for panel in config.panels
        for model in config.models
        for seed in range(config.seeds)
    ]


def summarise(config: Toy1dConfig, stored: list[StoredTrial]) -> dict[str, Any]:
    """Final full-data training loss per panel and model (mean, std over seeds) beside the
    closed-form references."""
    groups = group(stored)
    summary: dict[str, Any] = {}
    for panel in config.panels:
        name, kwargs = config.data(panel)
        data = load_dataset(name, **kwargs)
        entry: dict[str, Any] = {"references": references(panel, data), "models": {}}
        for model in config.models:
            runs = groups.get((panel, model), [])
            if not runs:
                continue
            final = np.array([t.result["train_loss"] for t in runs])
            entry["models"][model] = {
                "final_loss_mean": float(final.mean()),
                "final_loss_std": float(final.std()),
                "final_loss": final.tolist(),
                "n_parameters": runs[0].result["n_parameters"],
                "iterations": runs[0].result["iterations"],
                "seconds_mean": float(np.mean([t.result["seconds_total"] for t in runs])),
            }
        summary[panel] = entry
    return summary


def format_summary(summary: dict[str, Any]) -> str:
    lines = [f"{'panel':<11} {'model':<7} {'final MSE':>17} {'constant':>9} {'NODE floor':>11}"]
    for panel, entry in summary.items():
        ref = entry["references"]
        floor = f"{ref['node_floor']:.3f}" if "node_floor" in ref else "-"
        for model, m in entry["models"].items():
            mse = f"{m['final_loss_mean']:.4f} +- {m['final_loss_std']:.4f}"
            lines.append(f"{panel:<11} {model:<7} {mse:>17} {ref['constant']:>9.3f} {floor:>11}")
    return "\n".join(lines)


EXPERIMENT = Reproduction(
    name="dupont-1d",
    config=Toy1dConfig,
    trials=trials,
    report=format_summary,
    summarise=summarise,
    figures="pyanode.plots.dupont:plot_losses",
)
