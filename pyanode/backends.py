"""Backends: the torch implementation (embedded default) and the Julia one, behind one interface.

Everything that crosses this boundary is plain numbers: specs, numpy arrays, lists of dicts.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Any, Protocol

import numpy as np
import torch
from torch import nn

from pyanode._errors import DataError, SpecError
from pyanode._names import BACKENDS, gradients_of
from pyanode._validate import check_choice
from pyanode.data import Dataset
from pyanode.specs import ModelSpec, RunSpec, SolverSpec, TrainSpec
from pyanode.torch import (
    NeuralODE,
    Trainer,
    build_image_model,
    build_model,
    flat_parameters,
    set_flat_parameters,
)

log = logging.getLogger("pyanode")


def check_supported(spec: RunSpec) -> None:
    """Raise SpecError for what a RunSpec asks of a backend that lacks it: a gradient method
    only the Julia backend has on torch, a flow readout (torch only) on Julia."""
    if spec.backend == "torch":
        _check_torch_gradient(spec.solver)
    elif spec.model.readout != "linear":
        raise SpecError(
            f"model.readout={spec.model.readout!r} is only in the torch backend; "
            f"set backend = 'torch' (backend={spec.backend!r} builds a linear readout)"
        )
    elif spec.train.dtype != "float32" or spec.train.device not in ("cpu", "cuda"):
        raise SpecError(
            f"train.dtype={spec.train.dtype!r}, train.device={spec.train.device!r}: the Julia "
            "backend trains in float32 on 'cpu' or 'cuda'; set backend = 'torch' for others"
        )


def _check_torch_gradient(solver: SolverSpec) -> None:
    accepted = gradients_of("torch")
    if solver.gradient not in accepted:
        raise SpecError(
            f"solver.gradient={solver.gradient!r} is only in the Julia backend; "
            f"the torch backend has: {', '.join(accepted)}"
        )


class FirstCoordinates(nn.Module):
    """The readout of a pure flow: the first `dim` coordinates of the state, no parameters.

    Prop. 1 of Dupont et al. is about the flow itself: with a learned linear layer after it a
    1-D NODE fits g_1d(x) = -x trivially (weight -1), so g_1d is fitted by the flow alone.
    """

    def __init__(self, dim: int):
        super().__init__()
        self.dim = dim

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        return z[:, : self.dim]


class Fitted(Protocol):
    """A trained model, as numpy in and numpy out."""

    history: list[dict[str, Any]]

    def predict(self, x: np.ndarray) -> np.ndarray: ...
    def features(self, x: np.ndarray) -> np.ndarray: ...
    def trajectories(self, x: np.ndarray, ts: np.ndarray) -> np.ndarray: ...
    def parameters(self) -> np.ndarray: ...
    def set_parameters(self, vector: np.ndarray) -> None: ...


class Backend(Protocol):
    name: str

    def fit(
        self,
        model: ModelSpec,
        solver: SolverSpec,
        train: TrainSpec,
        train_data: Dataset,
        test_data: Dataset | None = None,
        **kwargs: Any,
    ) -> Fitted: ...


class TorchFitted:
    """A torch model and the trainer that fitted it; `predict` gives class probabilities for
    classification and raw outputs for regression."""

    def __init__(self, trainer: Trainer):
        self.trainer = trainer
        self.model = trainer.model
        self.history = trainer.history

    def _run(self, fn: Callable[[torch.Tensor], torch.Tensor], x: np.ndarray) -> np.ndarray:
        x = np.asarray(x, dtype=np.float32)
        expected = self.trainer.feature_shape
        if x.ndim != len(expected) + 1 or x.shape[1:] != expected:
            raise DataError(
                f"x must have shape (N, {', '.join(map(str, expected))}) like the training data, "
                f"got {x.shape}"
            )
        self.model.eval()
        with torch.no_grad():
            out = fn(self.trainer.inputs(x))
        return out.cpu().numpy()

    def predict(self, x: np.ndarray) -> np.ndarray:
        out = self._run(self.model, x)
        if self.trainer.loss == "cross-entropy":
            out = np.exp(out - out.max(axis=1, keepdims=True))
            out /= out.sum(axis=1, keepdims=True)
        return out

    def features(self, x: np.ndarray) -> np.ndarray:
        return self._run(self.model.features, x)

    def trajectories(self, x: np.ndarray, ts: np.ndarray) -> np.ndarray:
        if not isinstance(self.model, NeuralODE):
            raise TypeError(f"{type(self.model).__name__} has no continuous trajectories")
        times = torch.as_tensor(np.asarray(ts, dtype=np.float64))
        return self._run(lambda xx: self.model.trajectories(xx, times.to(xx.device)), x)

    def parameters(self) -> np.ndarray:
        return flat_parameters(self.model)

    def set_parameters(self, vector: np.ndarray) -> None:
        set_flat_parameters(self.model, vector)


class TorchBackend:
    """The embedded default: pyanode's own solvers and models in PyTorch."""

    name = "torch"

    def build(
        self, model: ModelSpec, solver: SolverSpec, train: TrainSpec, data: Dataset
    ) -> nn.Module:
        """The network of `model` for `data` (images get the conv field), initialised from
        `train.seed`; a `flow` readout replaces the output layer by `FirstCoordinates`."""
        _check_torch_gradient(solver)
        out_dim = data.n_outputs
        if data.x.ndim == 4:  # images (N, C, H, W): the convolutional NODE / ANODE
            net = build_image_model(model, data.feature_shape, out_dim, solver, seed=train.seed)
        else:
            net = build_model(model, data.n_features, out_dim, solver, seed=train.seed)
        if model.readout == "flow":
            net.output_map = FirstCoordinates(out_dim)
        return net

    def fit(
        self,
        model: ModelSpec,
        solver: SolverSpec,
        train: TrainSpec,
        train_data: Dataset,
        test_data: Dataset | None = None,
        *,
        state: dict[str, Any] | None = None,
        **run_kwargs: Any,
    ) -> TorchFitted:
        """Build the model and train it; `state` resumes from `Trainer.state_dict()`, and
        `run_kwargs` (on_batch, on_epoch, progress) go to `Trainer.run`."""
        net = self.build(model, solver, train, train_data)
        trainer = Trainer(net, train, train_data, test_data)
        if state is not None:
            trainer.load_state_dict(state)
        trainer.run(**run_kwargs)
        return TorchFitted(trainer)


_AUTO_SAID = False


def get_backend(name: str) -> Backend:
    """The backend called `name`: `torch`, `julia`, or `auto` (Julia when usable, else torch,
    saying so once).

    Raises:
        SpecError: for an unknown name.
        JuliaUnavailable: for `julia` when Julia cannot be used, with the reason and the fix.
    """
    global _AUTO_SAID
    check_choice("backend", name, BACKENDS, error=SpecError)
    if name == "torch":
        return TorchBackend()
    from pyanode import julia

    if name == "julia":
        return julia.JuliaBackend()
    state = julia.status()  # auto
    if state.available and state.installed:
        return julia.JuliaBackend()
    if not _AUTO_SAID:
        log.warning("backend 'auto': using torch (Julia: %s)", state.reason)
        _AUTO_SAID = True
    return TorchBackend()
