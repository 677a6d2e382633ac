"""Forward NFE per training iteration, NODE against ANODE: Dupont et al., "Augmented Neural
ODEs" (2019), Figs. 7 and 11b.

Both models are trained on g(x) (concentric spheres, d = 2, MSE on -1 / +1) with dopri5 at
rtol = atol = 1e-3; every iteration's forward NFE (the function evaluations of the training
forward pass) and loss are stored. The paper: "the NFEs required by ANODEs hardly increases
during training while it nearly doubles for NODEs".
"""

from __future__ import annotations

import argparse
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, ClassVar

import numpy as np

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
    "Dupont et al. Figs. 7 and 11b: forward NFE per iteration of NODE and ANODE trained on "
    "concentric spheres (d = 2), mean +- std over seeds"
)

MODELS = ("node", "anode")
SUMMARY = "summary.json"


@dataclass(frozen=True)
class NFEConfig:
    """The settings of `run`; `PAPER` holds the paper's values where they differ."""

    PAPER: ClassVar[dict[str, Any]] = {"seeds": 20, "epochs": 50}

    models: tuple[str, ...] = field(default=MODELS, metadata={"help": "which models"})
    dim: int = field(default=2, metadata={"help": "dimension d of the spheres"})
    seeds: int = field(default=3, metadata={"help": "seeds 0..n-1 (the paper: 20)"})
    epochs: int = field(default=20, metadata={"help": "training epochs"})
    n_inner: int = field(default=1000, metadata={"help": "points in the inner ball"})
    n_outer: int = field(default=2000, metadata={"help": "points in the outer annulus"})
    batch_size: int = field(default=64, metadata={"help": "mini-batch size"})
    lr: float = field(default=1e-3, metadata={"help": "Adam learning rate"})
    hidden: int = field(default=32, metadata={"help": "hidden width of the field"})
    augment_dim: int = field(default=5, metadata={"help": "zeros appended by ANODE"})
    data_seed: int = field(default=0, metadata={"help": "seed of the dataset"})
    threads: int | None = field(
        default=1,
        metadata={"help": "torch threads (0: torch's default)", "type": int},
    )

    def __post_init__(self) -> None:
        check_config(
            self,
            ("seeds", "epochs", "n_inner", "n_outer", "batch_size", "dim"),
            {"models": MODELS},
        )

    @property
    def panel(self) -> str:
        return f"spheres-{self.dim}d"


def plans(config: NFEConfig) -> list[Plan]:
    data = toy_data(
        config.panel, n_inner=config.n_inner, n_outer=config.n_outer, seed=config.data_seed
    )
    out = []
    for model in config.models:
        spec = toy_model(model, hidden=config.hidden, augment_dim=config.augment_dim)
        for seed in range(config.seeds):
            train = toy_train(
                seed, config.epochs, batch_size=config.batch_size, lr=config.lr,
                threads=config.threads,
            )  # fmt: skip
            out.append(toy_plan(config.panel, model, seed, data, spec, train))
    return out


def summarise(out: Path) -> dict[str, Any]:
    """Per model: forward NFE over the first and the last 5% of the iterations (mean, std over
    seeds) and their ratio, the final training loss; stored as `summary.json`."""
    summary: dict[str, Any] = {}
    groups = group(read_trials(out))
    for (_, model), trials in sorted(groups.items(), key=lambda kv: MODELS.index(kv[0][1])):
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
    write_json(out / SUMMARY, summary)
    return summary


def run(config: NFEConfig, out: str | Path) -> dict[str, Any]:
    """Train every trial of `config` into `out` (finished ones are kept) and summarise.

    Returns:
        The summary (see `summarise`).
    """
    out = Path(out)
    run_plans(out, config, plans(config))
    return summarise(out)


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


def add_arguments(parser: argparse.ArgumentParser) -> None:
    add_config_arguments(parser, NFEConfig, "dupont-nfe")


def main(args: argparse.Namespace) -> int:
    from pyanode.plots.dupont import plot_nfe

    start = time.perf_counter()
    if args.plot_only:
        load_config(NFEConfig, args.out)
        summary = summarise(args.out)
    else:
        summary = run(config_from_args(NFEConfig, args), args.out)
    files = plot_nfe(args.out)
    print(format_summary(summary))
    print(f"{time.perf_counter() - start:.0f} s; figures: {', '.join(map(str, files))}")
    return 0
