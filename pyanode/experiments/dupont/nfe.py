"""Forward NFE per training iteration, NODE against ANODE: Dupont et al., "Augmented Neural
ODEs" (2019), Figs. 7 and 11b.

Both models are trained on g(x) (concentric spheres, d = 2, MSE on -1 / +1) with dopri5 at
rtol = atol = 1e-3; every iteration's forward NFE (the function evaluations of the training
forward pass) and loss are stored. The paper: "the NFEs required by ANODEs hardly increases
during training while it nearly doubles for NODEs".
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, ClassVar

import numpy as np

from pyanode.experiments.dupont import group, shared_setting, stack, toy_data, toy_model, toy_trial
from pyanode.experiments.reproduce import Reproduction, check_positive, check_subset
from pyanode.experiments.runner import Trial
from pyanode.experiments.store import StoredTrial
from pyanode.specs import setting

MODELS = ("node", "anode")


@dataclass(frozen=True)
class NFEConfig:
    """The settings of `dupont-nfe`; `PAPER` holds the paper's values where they differ."""

    PAPER: ClassVar[dict[str, Any]] = {"seeds": 20, "epochs": 50}

    models: tuple[str, ...] = setting(MODELS, "which models")
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
        check_subset(self, "models", MODELS)
        trials(self)  # building the specs validates the training settings

    @property
    def panel(self) -> str:
        return f"spheres-{self.dim}d"


def trials(config: NFEConfig) -> list[Trial]:
    """Every model x seed on concentric spheres in `dim` dimensions."""
    data = toy_data(
        config.panel, n_inner=config.n_inner, n_outer=config.n_outer, seed=config.data_seed
    )
    return [
        toy_trial(
            config.panel,
            model,
            seed,
            data,
            toy_model(model, hidden=config.hidden, augment_dim=config.augment_dim),
            config,
            config.epochs,
        )  # fmt: skip
        for model in config.models
        for seed in range(config.seeds)
    ]


def summarise(config: NFEConfig, stored: list[StoredTrial]) -> dict[str, Any]:
    """Per model: forward NFE over the first and the last 5% of the iterations (mean, std over
    seeds) and their ratio, the final training loss."""
    summary: dict[str, Any] = {}
    for (_, model), trials in group(stored, MODELS).items():
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


def format_summary(summary: dict[str, Any]) -> str:
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


EXPERIMENT = Reproduction(
    name="dupont-nfe",
    config=NFEConfig,
    trials=trials,
    report=format_summary,
    summarise=summarise,
    figures="pyanode.plots.dupont:plot_nfe",
)
