"""Reproductions of Dupont et al., "Augmented Neural ODEs" (NeurIPS 2019).

Each experiment is a `Reproduction` (`pyanode.experiments.reproduce`): a frozen config dataclass
(its defaults run in minutes on a laptop CPU; `PAPER` holds the paper's values), its trials,
their summary and figures. Every trial is a `Trial` for the one runner, keyed by `panel`,
`model` and `seed`; the figures (`pyanode.plots.dupont`) read the stored trials alone.

- `curves`: `DUPONT_1D` (dupont-1d), loss curves on g_1d and concentric spheres, d = 1, 2
  (Figs. 5, 8); `DUPONT_NFE` (dupont-nfe), forward NFE per iteration, NODE vs ANODE (Figs. 7,
  11b);
- `flows`: `DUPONT_FLOWS` (dupont-flows), trajectories of the learned flows (Figs. 2, 9);
  `DUPONT_FEATURES` (dupont-features), features during training (Figs. 6, 10);
- `generalisation`: `DUPONT_GENERALISATION` (dupont-generalisation), prediction maps and the
  slice-removed validation loss (Fig. 11a/c);
- `images`: `DUPONT_IMAGES` (dupont-images), conv NODE vs ANODE on digits / MNIST / CIFAR-10
  (§5.2, Figs. 13, 14).

This module holds what they share: the toy problems and models of §§3-5.1 and App. E, and the
grouping of stored trials by panel and model.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from typing import Any

import numpy as np

from pyanode.experiments.runner import Record, Trial
from pyanode.experiments.store import StoredTrial, read_batch, read_json
from pyanode.specs import ModelSpec, RunSpec, SolverSpec, TrainSpec, setting

# Dupont et al.'s code solves with dopri5 at rtol = atol = 1e-3 (App. E names RK4 with these
# tolerances, but a fixed-step RK4 has neither tolerances nor a varying NFE).
SOLVER = SolverSpec(solver="dp5", rtol=1e-3, atol=1e-3)

# g1d: g_1d(-1) = 1, g_1d(1) = -1 (§3); identity: the control of Fig. 2c; spheres-<d>: g(x) of §4
# (regression on -1 / +1); separable: the control of Fig. 6
TOY_DATA = ("g1d", "identity", "spheres-1d", "spheres-2d", "separable")
TOY_MODELS = ("node", "anode", "resnet")
FLOW_ONLY = ("g1d", "identity")  # fitted by the flow itself, without a linear layer

# settings that mean the same in several experiments: name -> (default, --help text)
SHARED_SETTINGS: dict[str, tuple[Any, str]] = {
    "n_inner": (1000, "points in the inner ball"),
    "n_outer": (2000, "points in the outer annulus"),
    "batch_size": (64, "mini-batch size"),
    "lr": (1e-3, "Adam learning rate"),
    "threads": (1, "torch threads per trial"),
}


def shared_setting(name: str) -> Any:
    """The config field of the setting `name` of `SHARED_SETTINGS`."""
    return setting(*SHARED_SETTINGS[name])


def toy_data(
    panel: str, *, n_inner: int = 1000, n_outer: int = 2000, n_points: int = 100, seed: int = 0
) -> tuple[str, dict[str, Any]]:
    """The registry name and keyword arguments of a panel's regression data.

    Arguments:
        panel: one of `TOY_DATA`, or `spheres-<d>d` for any dimension d >= 1.
        n_inner, n_outer: points of the spheres (separable: n_inner + n_outer points).
        n_points: points of g1d / identity (half at -1, half at +1).
        seed: the data's seed.

    Raises:
        ValueError: for an unknown panel, listing the accepted ones.
    """
    if panel in ("g1d", "identity"):
        return "reflection-1d", {"n": n_points, "reflect": panel == "g1d", "seed": seed}
    dim = panel.removeprefix("spheres-").removesuffix("d")
    if panel == f"spheres-{dim}d" and dim.isdigit() and int(dim) >= 1:
        kwargs = {"dim": int(dim), "n_inner": n_inner, "n_outer": n_outer}
        return "concentric-spheres", {**kwargs, "task": "regression", "seed": seed}
    if panel == "separable":
        return "separable", {"n": n_inner + n_outer, "dim": 2, "task": "regression", "seed": seed}
    raise ValueError(f"panel={panel!r} is not known; accepted: {', '.join(TOY_DATA)}, spheres-<d>d")


def toy_model(model: str, *, hidden: int = 32, augment_dim: int = 5, depth: int = 5) -> ModelSpec:
    """App. E.1.1 / E.2.1: the MLP field d + 1 -> hidden -> hidden -> d (ReLU) of NODE and
    ANODE (`augment_dim` zeros appended), the ResNet of `depth` blocks of width `hidden`.

    Raises:
        ValueError: for an unknown model, listing the accepted ones.
    """
    if model == "node":
        return ModelSpec(kind="node", hidden=hidden)
    if model == "anode":
        return ModelSpec(kind="anode", hidden=hidden, augment_dim=augment_dim)
    if model == "resnet":
        return ModelSpec(kind="resnet", hidden=hidden, depth=depth)
    raise ValueError(f"model={model!r} is not known; accepted: {', '.join(TOY_MODELS)}")


def config_data(panel: str, config: Any) -> tuple[str, dict[str, Any]]:
    """`toy_data` of `panel` with an experiment `config`'s `n_inner`, `n_outer`, `data_seed`
    and, where it has them, `g1d_points`."""
    points = {"n_points": config.g1d_points} if hasattr(config, "g1d_points") else {}
    return toy_data(
        panel, n_inner=config.n_inner, n_outer=config.n_outer, seed=config.data_seed, **points
    )


def config_model(model: str, config: Any) -> ModelSpec:
    """`toy_model` of `model` with an experiment `config`'s `hidden`, `augment_dim` and, where
    it has one, `resnet_depth`."""
    depth = {"depth": config.resnet_depth} if hasattr(config, "resnet_depth") else {}
    return toy_model(model, hidden=config.hidden, augment_dim=config.augment_dim, **depth)


def toy_trial(
    panel: str,
    model: str,
    seed: int,
    data: tuple[str, dict[str, Any]],
    model_spec: ModelSpec,
    config: Any,
    epochs: int,
    record: Record | None = None,
    **data_fields: Any,
) -> Trial:
    """One toy trial: a regression with an MSE loss on targets -1 / +1 (App. E.2.1), Adam with
    the `batch_size`, `lr` and `threads` of an experiment's `config`, dopri5 at 1e-3; the flow
    alone fits g1d and the identity, a linear layer follows it elsewhere. It records the
    per-iteration rows unless `record` says more; `data_fields` set the test set (see
    `RunSpec`; by default there is none)."""
    name, kwargs = data
    readout = "flow" if panel in FLOW_ONLY else "linear"
    spec = RunSpec(
        dataset=name,
        dataset_kwargs=kwargs,
        **{"test_fraction": 0.0, **data_fields},
        model=model_spec.replace(readout=readout),
        solver=SOLVER,
        train=TrainSpec(
            epochs=epochs,
            batch_size=config.batch_size,
            lr=config.lr,
            seed=seed,
            loss="mse",
            threads=config.threads,
        ),
    )
    key = {"panel": panel, "model": model, "seed": seed}
    return Trial(spec, key, record or Record(iterations=True))


# -- reading the stored trials -------------------------------------------------------------------
def read_trials(out: str | os.PathLike, **match: Any) -> list[StoredTrial]:
    """The finished trials of the experiment in `out` whose key matches (e.g. `panel="g1d"`),
    sorted by panel, model and seed.

    Raises:
        FileNotFoundError: naming what is missing, if there are none.
    """
    trials = read_batch(out, **match)
    return sorted(trials, key=lambda t: (t.key["panel"], t.key["model"], t.key["seed"]))


def read_config(out: str | os.PathLike) -> dict[str, Any]:
    """The settings of the experiment's last run in `out` (empty if none are stored)."""
    path = os.path.join(out, "config.json")
    return read_json(path)["config"] if os.path.exists(path) else {}


def group(
    trials: Sequence[StoredTrial], model_order: Sequence[str] = ()
) -> dict[tuple[str, str], list[StoredTrial]]:
    """Trials grouped by (panel, model), seeds in order; with `model_order` the groups come in
    that order of their models."""
    out: dict[tuple[str, str], list[StoredTrial]] = {}
    for t in trials:
        out.setdefault((t.key["panel"], t.key["model"]), []).append(t)
    if model_order:
        rank = {m: i for i, m in enumerate(model_order)}
        out = dict(sorted(out.items(), key=lambda kv: rank.get(kv[0][1], len(rank))))
    return out


def stack(trials: Sequence[StoredTrial], key: str) -> np.ndarray:
    """The per-iteration column `key` of each trial as rows of one (seeds, iterations) array,
    cut to the shortest trial."""
    columns = [t.iterations[key] for t in trials if key in t.iterations]
    if not columns:
        return np.zeros((0, 0))
    n = min(len(c) for c in columns)
    return np.stack([c[:n] for c in columns])
