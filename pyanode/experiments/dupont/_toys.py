"""The toy problems and toy models of Dupont et al. (2019), §§3-5.1 and App. E, by name."""

from __future__ import annotations

from typing import Any

from pyanode.data import Dataset, concentric_spheres, reflection_1d, separable
from pyanode.experiments.dupont._common import SOLVER, Plan
from pyanode.specs import ModelSpec, RunSpec, TrainSpec

# g1d: g_1d(-1) = 1, g_1d(1) = -1 (§3); identity: the control of Fig. 2c; spheres-<d>: g(x) of §4
# (regression on -1 / +1); separable: the control of Fig. 6
TOY_DATA = ("g1d", "identity", "spheres-1d", "spheres-2d", "separable")
TOY_MODELS = ("node", "anode", "resnet")
FLOW_ONLY = ("g1d", "identity")  # fitted by the flow itself, without a linear layer


def toy_data(
    panel: str, *, n_inner: int = 1000, n_outer: int = 2000, n_points: int = 100, seed: int = 0
) -> tuple[Dataset, str, dict[str, Any]]:
    """The regression data of a panel, with its registry name and keyword arguments.

    Arguments:
        panel: one of `TOY_DATA`, or `spheres-<d>d` for any dimension d >= 1.
        n_inner, n_outer: points of the spheres (separable: n_inner + n_outer points).
        n_points: points of g1d / identity (half at -1, half at +1).
        seed: the data's seed.

    Raises:
        ValueError: for an unknown panel, listing the accepted ones.
    """
    if panel in ("g1d", "identity"):
        kwargs: dict[str, Any] = {"n": n_points, "reflect": panel == "g1d", "seed": seed}
        return reflection_1d(**kwargs), "reflection-1d", kwargs
    dim = panel.removeprefix("spheres-").removesuffix("d")
    if panel == f"spheres-{dim}d" and dim.isdigit() and int(dim) >= 1:
        kwargs = {
            "dim": int(dim),
            "n_inner": n_inner,
            "n_outer": n_outer,
            "task": "regression",
            "seed": seed,
        }
        return concentric_spheres(**kwargs), "concentric-spheres", kwargs
    if panel == "separable":
        kwargs = {"n": n_inner + n_outer, "dim": 2, "task": "regression", "seed": seed}
        return separable(**kwargs), "separable", kwargs
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


def toy_train(config: Any, seed: int, epochs: int) -> TrainSpec:
    """Adam on the MSE (the toy tasks are regressions on -1 / +1, App. E.2.1) with the
    `batch_size`, `lr` and `threads` of an experiment's `config` (threads 0 keeps torch's)."""
    return TrainSpec(
        epochs=epochs,
        batch_size=config.batch_size,
        lr=config.lr,
        seed=seed,
        loss="mse",
        threads=config.threads or None,
    )


def toy_plan(
    panel: str,
    model: str,
    seed: int,
    data: tuple[Dataset, str, dict[str, Any]],
    model_spec: ModelSpec,
    train_spec: TrainSpec,
    *,
    validation: Dataset | None = None,
    **options: Any,
) -> Plan:
    """One toy trial: flow-only readout for g1d / identity, the linear layer otherwise."""
    dataset, name, kwargs = data
    spec = RunSpec(
        dataset=name,
        dataset_kwargs=kwargs,
        test_fraction=0.0,
        model=model_spec,
        solver=SOLVER,
        train=train_spec,
    )
    options.setdefault("flow_readout", panel in FLOW_ONLY)
    options.setdefault("extra", {})["panel"] = panel
    return Plan(panel, model, seed, spec, dataset, validation, options)
