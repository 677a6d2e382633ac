"""Curves over seeds: Dupont et al., "Augmented Neural ODEs" (2019), the training loss (Figs. 5
and 8, `dupont-1d`) and the forward NFE per iteration (Figs. 7 and 11b, `dupont-nfe`) of NODE,
ANODE and ResNet on the toy problems (`pyanode.experiments.dupont`).

`dupont-1d`: every model is trained as regression with an MSE loss on targets -1 / +1 (App. E),
Adam with lr 1e-3 and batches of 64 (App. E.2.1), the MLP field d + 1 -> 32 -> 32 -> d with
ReLU, dopri5 at rtol = atol = 1e-3, on g_1d and on concentric spheres in d = 1 and d = 2. ANODE
appends 5 zeros, the ResNet has 5 residual blocks of width 32 (the best settings of App. E.2.1).
Spheres: 1000 inner and 2000 outer points, r = 0.5, 1.0, 1.5.

g_1d (Prop. 1, g(-1) = 1, g(1) = -1) is fitted by the flow itself (`FirstCoordinates` readout):
with a learned linear layer after it a 1-D NODE would fit it with weight -1. The spheres are
fitted by the flow followed by a linear layer, as in §2.

Beside the curves, the experiment stores two closed-form references per panel: the loss of the
best constant (the variance of the targets) and, in 1-D, the smallest loss any NODE can reach:
its map x -> L(phi(x)) is monotone (the flow is an increasing homeomorphism of R), so it is
bounded below by the isotonic regression of the targets (increasing only for the pure flow).

`dupont-nfe`: NODE and ANODE are trained on g(x) (concentric spheres, d = 2, MSE on -1 / +1)
with dopri5 at rtol = atol = 1e-3; every iteration's forward NFE (the function evaluations of
the training forward pass) and loss are stored. The paper: "the NFEs required by ANODEs hardly
increases during training while it nearly doubles for NODEs".
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, ClassVar

import numpy as np

from pyanode._errors import SpecError
from pyanode._validate import check_subset
from pyanode.data import Dataset, load_dataset
from pyanode.experiments.dupont import (
    config_data,
    config_model,
    group,
    shared_setting,
    stack,
    toy_trial,
)
from pyanode.experiments.reproduce import Reproduction, check_positive
from pyanode.experiments.runner import Trial
from pyanode.experiments.store import StoredTrial
from pyanode.specs import ModelSpec, setting

# -- dupont-1d: loss curves (Figs. 5, 8) ----------------------------------------------------------
PANELS_1D = ("g1d", "spheres-1d", "spheres-2d")
MODELS_1D = ("node", "anode", "resnet")


@dataclass(frozen=True)
class Toy1dConfig:
    """The settings of `dupont-1d`; `PAPER` holds the paper's values where they differ."""

    PAPER: ClassVar[dict[str, Any]] = {"seeds": 20, "epochs": 50}

    panels: tuple[str, ...] = setting(PANELS_1D, "which panels")
    models: tuple[str, ...] = setting(MODELS_1D, "which models")
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
        check_subset("panels", self.panels, PANELS_1D, error=SpecError)
        check_subset("models", self.models, MODELS_1D, error=SpecError)
        self.model_spec("anode")
        trials_1d(self)  # building the specs validates the training settings

    def model_spec(self, model: str) -> ModelSpec:
        return config_model(model, self)

    def data(self, panel: str) -> tuple[str, dict[str, Any]]:
        """The panel's data: registry name and keyword arguments."""
        return config_data(panel, self)


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


def trials_1d(config: Toy1dConfig) -> list[Trial]:
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


def summarise_1d(config: Toy1dConfig, stored: list[StoredTrial]) -> dict[str, Any]:
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


def report_1d(summary: dict[str, Any]) -> str:
    lines = [f"{'panel':<11} {'model':<7} {'final MSE':>17} {'constant':>9} {'NODE floor':>11}"]
    for panel, entry in summary.items():
        ref = entry["references"]
        floor = f"{ref['node_floor']:.3f}" if "node_floor" in ref else "-"
        for model, m in entry["models"].items():
            mse = f"{m['final_loss_mean']:.4f} +- {m['final_loss_std']:.4f}"
            lines.append(f"{panel:<11} {model:<7} {mse:>17} {ref['constant']:>9.3f} {floor:>11}")
    return "\n".join(lines)


DUPONT_1D = Reproduction(
    name="dupont-1d",
    config=Toy1dConfig,
    trials=trials_1d,
    report=report_1d,
    summarise=summarise_1d,
    figures="pyanode.plots.dupont:plot_losses",
)


# -- dupont-nfe: NFE per iteration (Figs. 7, 11b) -------------------------------------------------
MODELS_NFE = ("node", "anode")


@dataclass(frozen=True)
class NFEConfig:
    """The settings of `dupont-nfe`; `PAPER` holds the paper's values where they differ."""

    PAPER: ClassVar[dict[str, Any]] = {"seeds": 20, "epochs": 50}

    models: tuple[str, ...] = setting(MODELS_NFE, "which models")
    dim: int = setting(2, "dimension d of the spheres")
    seeds: int = setting(3, "seeds 0..n-1 (the paper: 20)")
    epochs: int = setting(20, "training epochs")
    n_inner: int = shared_setting("n_inner")
    n_outer: int = shared_setting("n_outer")
    batch_size: int = shared_setting("batch_size")
    lr: float = shared_setting("lr")
    hidden: int = setting(32, "hidden width of the field")
    augment_dim: int = setting(5, "zeros appended by ANODE")
    data_seed: int = setting(0, "seed of the dataset")
    threads: int = shared_setting("threads")

    def __post_init__(self) -> None:
        check_positive(self, ("seeds", "epochs", "n_inner", "n_outer", "batch_size", "dim"))
        check_subset("models", self.models, MODELS_NFE, error=SpecError)
        trials_nfe(self)  # building the specs validates the training settings

    @property
    def panel(self) -> str:
        return f"spheres-{self.dim}d"


def trials_nfe(config: NFEConfig) -> list[Trial]:
    """Every model x seed on concentric spheres in `dim` dimensions."""
    data = config_data(config.panel, config)
    return [
        toy_trial(
            config.panel,
            model,
            seed,
            data,
            config_model(model, config),
            config,
            config.epochs,
        )  # fmt: skip
        for model in config.models
        for seed in range(config.seeds)
    ]


def summarise_nfe(config: NFEConfig, stored: list[StoredTrial]) -> dict[str, Any]:
    """Per model: forward NFE over the first and the last 5% of the iterations (mean, std over
    seeds) and their ratio, the final training loss."""
    summary: dict[str, Any] = {}
    for (_, model), trials in group(stored, MODELS_NFE).items():
        nfe = stack(trials, "nfe_forward")
        k = max(1, nfe.shape[1] // 20)
        first, last = nfe[:, :k].mean(axis=1), nfe[:, -k:].mean(axis=1)
        summary[model] = {
            "nfe_first_mean": float(first.mean()),
            "nfe_first_std": float(first.std()),
            "nfe_last_mean": float(last.mean()),
            "nfe_last_std": float(last.std()),
            "nfe_ratio_mean": float(np.mean(last / first)),
            "window_iterations": k,
            "iterations": int(nfe.shape[1]),
            "final_loss_mean": float(np.mean([t.result["train_loss"] for t in trials])),
            "final_loss_std": float(np.std([t.result["train_loss"] for t in trials])),
            "seeds": len(trials),
        }
    return summary


def report_nfe(summary: dict[str, Any]) -> str:
    lines = [
        f"{'model':<6} {'NFE first 5%':>14} {'NFE last 5%':>14} {'ratio':>6} {'final MSE':>10}"
    ]
    for model, m in summary.items():
        lines.append(
            f"{model:<6} {m['nfe_first_mean']:>7.1f} +- {m['nfe_first_std']:<4.1f}"
            f"{m['nfe_last_mean']:>7.1f} +- {m['nfe_last_std']:<4.1f}"
            f"{m['nfe_ratio_mean']:>6.2f} {m['final_loss_mean']:>10.4f}"
        )
    return "\n".join(lines)


DUPONT_NFE = Reproduction(
    name="dupont-nfe",
    config=NFEConfig,
    trials=trials_nfe,
    report=report_nfe,
    summarise=summarise_nfe,
    figures="pyanode.plots.dupont:plot_nfe",
)
