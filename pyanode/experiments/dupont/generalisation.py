"""Generalisation of NODE and ANODE on g(x): Dupont et al., "Augmented Neural ODEs" (2019),
Fig. 11a (the value each point of the input plane is mapped to) and Fig. 11c (the validation
loss when a slice of the input space is held out).

- panel `spheres-2d`: NODE and ANODE trained on all of concentric spheres (d = 2); the stored
  arrays hold their predictions on a `grid` x `grid` lattice of [-extent, extent]^2 (`grid_u`,
  `grid_v`, `grid_prediction`) and a subset of the training points (`train_x`, `train_y`);
- panel `slice-removed`: the points whose polar angle lies in [0, pi/5] are removed from the
  training set and form the validation set (`pyanode.data.slice_removed_split`); the validation
  MSE is stored every `eval_every` iterations (`val_loss` in iterations.jsonl), and the lowest
  prediction over the annulus at each degree (`annulus_degrees`, `annulus_lowest`).

The NODE's gap is bimodal (docs/fidelity.md item 3): it carries the inner disc out through a
thin channel in the annulus, where the map dips below 0; a run whose channel lies in the removed
slice predicts the slice's points badly, one whose channel lies elsewhere predicts them well.
So the summary gives each seed's losses and channel, the number of runs that exit through the
slice and the median besides mean ± std.
"""

from __future__ import annotations

import functools
import math
from dataclasses import dataclass
from typing import Any, ClassVar

import numpy as np

from pyanode._errors import SpecError
from pyanode._validate import check_subset
from pyanode.backends import TorchFitted
from pyanode.data import Dataset
from pyanode.experiments.dupont import (
    config_data,
    config_model,
    group,
    shared_setting,
    stack,
    toy_trial,
)
from pyanode.experiments.reproduce import Reproduction, check_positive
from pyanode.experiments.runner import Record, Trial
from pyanode.experiments.store import StoredTrial
from pyanode.specs import setting

MODELS = ("node", "anode")


@dataclass(frozen=True)
class GeneralisationConfig:
    """The settings of `dupont-generalisation`; `PAPER` holds the paper's values where they
    differ."""

    PAPER: ClassVar[dict[str, Any]] = {"seeds": 20, "epochs": 50, "map_epochs": 50}

    models: tuple[str, ...] = setting(MODELS, "which models")
    seeds: int = setting(3, "seeds of the slice-removed runs")
    epochs: int = setting(10, "epochs of the slice-removed runs")
    map_epochs: int = setting(20, "epochs of the prediction-map runs")
    angle_lo: float = setting(0.0, "removed slice: first angle (rad)")
    angle_hi: float = setting(math.pi / 5, "removed slice: last angle")
    eval_every: int = setting(5, "iterations between validation losses")
    n_inner: int = shared_setting("n_inner")
    n_outer: int = shared_setting("n_outer")
    batch_size: int = shared_setting("batch_size")
    lr: float = shared_setting("lr")
    hidden: int = setting(32, "hidden width of the field")
    augment_dim: int = setting(5, "zeros appended by ANODE")
    grid: int = setting(120, "points per axis of the prediction map")
    extent: float = setting(2.0, "the map covers [-extent, extent]^2")
    data_seed: int = setting(0, "seed of the dataset")
    threads: int = shared_setting("threads")

    def __post_init__(self) -> None:
        check_positive(
            self, ("seeds", "epochs", "map_epochs", "eval_every", "n_inner", "n_outer", "grid")
        )
        check_subset("models", self.models, MODELS, error=SpecError)
        trials(self)  # building the specs validates the training and split settings


def map_arrays(
    fitted: TorchFitted, train: Dataset, test: Dataset | None, *, grid: int, extent: float
) -> dict[str, np.ndarray]:
    """The arrays of a map trial: predictions on a `grid` x `grid` lattice of
    [-extent, extent]^2 (`grid_u`, `grid_v`, `grid_prediction`)."""
    u = np.linspace(-extent, extent, grid, dtype=np.float32)
    uu, vv = np.meshgrid(u, u)
    points = np.stack([uu.ravel(), vv.ravel()], axis=1)
    prediction = fitted.predict(points)[:, 0].reshape(grid, grid)
    return {"grid_u": u, "grid_v": u, "grid_prediction": prediction}


ANNULUS = (1.0, 1.5, 11)  # radii of the annulus of concentric spheres, and how many are probed


def annulus_arrays(
    fitted: TorchFitted, train: Dataset, test: Dataset | None
) -> dict[str, np.ndarray]:
    """The lowest prediction over the annulus's radii at each degree (`annulus_lowest`, at
    `annulus_degrees` 0.5, 1.5, ...): where the flow carries the inner disc out, it is < 0."""
    degrees = np.arange(360) + 0.5
    radii, angles = np.meshgrid(np.linspace(*ANNULUS), np.deg2rad(degrees), indexing="ij")
    points = np.stack([radii * np.cos(angles), radii * np.sin(angles)], axis=-1)
    prediction = fitted.predict(points.reshape(-1, 2).astype(np.float32))[:, 0]
    lowest = prediction.reshape(radii.shape).min(axis=0)
    return {"annulus_degrees": degrees, "annulus_lowest": lowest}


def channel(trial: StoredTrial) -> tuple[float, float]:
    """The angle (degrees) of the lowest prediction over the annulus, and that prediction."""
    lowest = trial.arrays["annulus_lowest"]
    at = int(np.argmin(lowest))
    return float(trial.arrays["annulus_degrees"][at]), float(lowest[at])


def trials(config: GeneralisationConfig) -> list[Trial]:
    """Per model: one map trial on all of the data, and the slice-removed trials per seed,
    whose test set is the removed slice (its loss every `eval_every` iterations)."""
    data = config_data("spheres-2d", config)
    arrays = functools.partial(map_arrays, grid=config.grid, extent=config.extent)
    map_record = Record(iterations=True, probe=600, arrays=arrays)
    slice_record = Record(iterations=True, eval_every=config.eval_every, arrays=annulus_arrays)
    angles = (config.angle_lo, config.angle_hi)
    out = []
    for model in config.models:
        spec = config_model(model, config)
        out.append(toy_trial("spheres-2d", model, 0, data, spec, config, config.map_epochs,
                             map_record))  # fmt: skip
        out += [
            toy_trial(
                "slice-removed",
                model,
                seed,
                data,
                spec,
                config,
                config.epochs,
                slice_record,
                test_slice=angles,
            )  # fmt: skip
            for seed in range(config.seeds)
        ]
    return out


def summarise(config: GeneralisationConfig, stored: list[StoredTrial]) -> dict[str, Any]:
    """Per model: final training and validation MSE of the slice-removed runs (mean, std and
    median over seeds, and per seed), each run's channel through the annulus and the number of
    runs whose channel lies in the removed slice (the map < 0 there), and the training MSE of
    the map run."""
    summary: dict[str, Any] = {}
    for (panel, model), trials in group(stored, MODELS).items():
        entry = summary.setdefault(model, {})
        train = np.array([t.result["train_loss"] for t in trials])
        if panel == "slice-removed":
            val = stack(trials, "test_loss")
            val = val[:, ~np.isnan(val).any(axis=0)]
            entry.update(
                slice_train_loss_mean=float(train.mean()),
                slice_train_loss_std=float(train.std()),
                val_loss_mean=float(val[:, -1].mean()),
                val_loss_std=float(val[:, -1].std()),
                val_loss_min_mean=float(val.min(axis=1).mean()),
                val_loss_median=float(np.median(val[:, -1])),
                seeds=len(trials),
                n_validation=trials[0].result["n_test"],
                **_channels(config, trials, train, val[:, -1]),
            )
        else:
            entry["map_train_loss"] = float(train.mean())
    return summary


def _channels(
    config: GeneralisationConfig, trials: list[StoredTrial], train: np.ndarray, val: np.ndarray
) -> dict[str, Any]:
    """Per seed: the losses and where the flow cuts the annulus; how many runs cut it in the
    removed slice."""
    lo, hi = np.rad2deg(config.angle_lo), np.rad2deg(config.angle_hi)
    cuts = [channel(t) for t in trials]
    through = [bool(low < 0 and lo <= angle <= hi) for angle, low in cuts]
    return {
        "per_seed": [
            {
                "seed": t.key["seed"],
                "train_loss": float(tr),
                "val_loss": float(v),
                "channel_degrees": angle,
                "lowest_on_annulus": low,
                "through_slice": th,
            }
            for t, tr, v, (angle, low), th in zip(trials, train, val, cuts, through, strict=True)
        ],  # fmt: skip
        "seeds_through_slice": int(sum(through)),
    }


def format_summary(summary: dict[str, Any]) -> str:
    lines = [f"{'model':<6} {'map train MSE':>13} {'slice train MSE':>17} {'validation MSE':>17}"]
    for model, m in summary.items():
        lines.append(
            f"{model:<6} {m.get('map_train_loss', float('nan')):>13.4f} "
            f"{m['slice_train_loss_mean']:>8.4f} +- {m['slice_train_loss_std']:<6.4f}"
            f"{m['val_loss_mean']:>8.4f} +- {m['val_loss_std']:<6.4f}"
        )
    for model, m in summary.items():
        lines.append(
            f"{model}: validation MSE median {m['val_loss_median']:.4f}; "
            f"{m['seeds_through_slice']} of {m['seeds']} runs cut the annulus in the removed slice"
        )
        for s in m["per_seed"]:
            lines.append(
                f"  seed {s['seed']}: train {s['train_loss']:.4f}, validation {s['val_loss']:.4f}, "
                f"lowest prediction on the annulus {s['lowest_on_annulus']:+.2f} at "
                f"{s['channel_degrees']:.1f} deg"
                + (" (in the slice)" if s["through_slice"] else "")
            )
    return "\n".join(lines)


DUPONT_GENERALISATION = Reproduction(
    name="dupont-generalisation",
    config=GeneralisationConfig,
    trials=trials,
    report=format_summary,
    summarise=summarise,
    figures="pyanode.plots.dupont:plot_generalisation",
)
