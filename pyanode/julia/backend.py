"""The Julia backend: the same `fit -> Fitted` interface as the torch backend, run by PyANODE.jl.

Data cross as numpy: inputs as `x.T` (a (D, N) view that Julia reads without copying and then
copies once), 0-based int64 labels or `y.T` regression targets, plain str/int/float settings,
and one flat float32 parameter vector in the shared order (below). Python holds an opaque Julia
handle and makes one call per epoch.

The shared order of the flat parameter vector (`weight_shapes`, `parameter_count`: pure numpy),
as docs/architecture.md: layers in forward order; for each, the weight then the bias, as torch's
`weight.flatten()` and `bias.flatten()`. A layer is described by its torch weight shape:

* a dense layer, (out, in): W row-major, then b (out,). Julia (Lux) stores W as (out, in)
  column-major, so in Julia's own memory (a `ComponentArray`) each weight segment is the
  transpose.
* a `GalerkinLinear` (depth-variant weights theta(t) = sum_k theta_k phi_k(t)), (K, out, in):
  W_0, ..., W_{K-1} (each row-major), then b_0, ..., b_{K-1} (torch's (K, out) bias). Julia's
  `GalerkinDense` stores W as (out, in, K) and b as (out, K), both column-major: in Julia's
  memory each W_k is transposed and the bias segment is unchanged.

The Julia side converts between the shared order and its own arrays (`PyANODE.flat_to_ps` /
`ps_to_flat`); Python needs only the shapes, to check a vector's length before it crosses.

Example: W = [[1, 2, 3], [4, 5, 6]], b = [7, 8] is [1, 2, 3, 4, 5, 6, 7, 8] in the shared order
and [1, 4, 2, 5, 3, 6, 7, 8] in Julia's memory order.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from typing import Any

import numpy as np
from tqdm.auto import tqdm

from pyanode._errors import (
    SOLVER_FAILURES,
    DataError,
    JuliaUnavailable,
    SolverError,
    SpecError,
    TrainingDiverged,
)
from pyanode._names import MODEL_KINDS, gradients_of, solver_name
from pyanode._validate import check_choice
from pyanode.data import Dataset
from pyanode.julia._load import JuliaSession, load
from pyanode.specs import ModelSpec, SolverSpec, TrainSpec

EpochHook = Callable[["JuliaFitted", dict[str, Any]], None]

Shape = tuple[int, ...]  # a torch weight shape: (out, in) or (K, out, in)
Shapes = Sequence[Shape]  # one per layer, in forward order

DEPTH_VARIANT_KINDS = ("chebyshev", "fourier", "stacked")


def n_terms(spec: ModelSpec) -> int:
    """K, the basis functions of a depth-variant kind: Chebyshev `degree + 1`, Fourier
    `2 degree + 1`, stacked `n_pieces` (as `pyanode.torch._depth_variant`).

    Raises:
        SpecError: for a kind that is not depth-variant.
    """
    if spec.kind == "chebyshev":
        return spec.degree + 1
    if spec.kind == "fourier":
        return 2 * spec.degree + 1
    if spec.kind == "stacked":
        return spec.n_pieces
    raise SpecError(
        f"model.kind={spec.kind!r} has no depth-variant basis; accepted: "
        f"{', '.join(DEPTH_VARIANT_KINDS)}"
    )


def weight_shapes(spec: ModelSpec, in_dim: int, out_dim: int) -> list[Shape]:
    """The torch weight shape of every layer of `spec`'s model, in forward order.

    Arguments:
        spec: the model spec (the Julia backend builds every kind of `MODEL_KINDS`).
        in_dim: input features; out_dim: classes or regression targets.

    Returns:
        (out, in) for a dense layer, (K, out, in) for a depth-variant one:
        [input map (il-node only) | g_omega's two layers (adaptive-depth only), field layers 1,
        2, 3 (resnet: three per residual block), head].

    Raises:
        SpecError: for a kind the Julia backend does not build.
    """
    check_choice("model.kind", spec.kind, MODEL_KINDS, error=SpecError)
    state = in_dim + spec.augment_dim
    head: list[Shape] = [(out_dim, state)]

    def mlp(n_in: int) -> list[Shape]:  # Dupont et al.'s field: n_in -> hidden -> hidden -> state
        return [(spec.hidden, n_in), (spec.hidden, spec.hidden), (state, spec.hidden)]

    if spec.kind == "resnet":  # depth residual blocks h + mlp(h), no time input
        return [*mlp(state) * spec.depth, *head]
    control = in_dim if spec.kind == "data-controlled" else 0
    field = mlp(state + control + int(spec.time_dependent))
    if spec.kind in DEPTH_VARIANT_KINDS:
        field = [(n_terms(spec), *shape) for shape in field]
    before: list[Shape] = []
    if spec.kind == "il-node":
        before = [(state, in_dim)]
    elif spec.kind == "adaptive-depth":
        before = [(spec.hidden, in_dim), (1, spec.hidden)]  # g_omega
    return [*before, *field, *head]


def _check_shape(shape: Shape) -> Shape:
    if len(shape) not in (2, 3):
        raise ValueError(f"a layer's weight shape is (out, in) or (K, out, in), got {shape}")
    return tuple(int(n) for n in shape)


def parameter_count(shapes: Shapes) -> int:
    """Number of parameters of layers with these torch weight shapes (weights and biases; a
    weight (K, out, in) has a bias (K, out), a weight (out, in) a bias (out,))."""
    return sum(
        int(np.prod(shape)) + int(np.prod(shape[:-1])) for shape in map(_check_shape, shapes)
    )


def batch_order(seed: int, epoch: int, n: int) -> np.ndarray:
    """The permutation of the `n` training points in `epoch`: the torch trainer's
    `pyanode.torch._trainer.batch_order`, repeated here so that this module never imports
    torch. Both backends see the same batches."""
    return np.random.default_rng([seed, epoch]).permutation(n)


def loss_for(train: TrainSpec, data: Dataset) -> str:
    """`cross-entropy` or `mse`: the spec's loss, or the data's task for `auto`.

    Raises:
        SpecError: when the loss does not fit the task.
    """
    wanted = "cross-entropy" if data.task == "classification" else "mse"
    loss = wanted if train.loss == "auto" else train.loss
    if loss != wanted:
        raise SpecError(
            f"train.loss={train.loss!r} does not fit {data.task} data {data.name!r}; "
            f"use {wanted!r} or 'auto'"
        )
    return loss


def _inputs(x: np.ndarray, in_dim: int) -> np.ndarray:
    """(N, D) float32 as the (D, N) view Julia reads; raises DataError for other shapes."""
    array = np.asarray(x)
    if array.ndim != 2 or array.shape[1] != in_dim:
        raise DataError(
            f"the Julia backend takes vector inputs of shape (N, {in_dim}), got {array.shape}; "
            "image models are only in the torch backend"
        )
    return np.ascontiguousarray(array, dtype=np.float32).T


def _targets(y: np.ndarray, loss: str) -> np.ndarray:
    """0-based int64 labels, or regression targets (N, k) as the (k, N) view."""
    array = np.asarray(y)
    if loss == "cross-entropy":
        return np.ascontiguousarray(array, dtype=np.int64).reshape(-1)
    return np.ascontiguousarray(array, dtype=np.float32).reshape(len(array), -1).T


def _numpy_dict(value: Any) -> dict[str, np.ndarray]:
    """A Julia `Dict{String, Vector{Float64}}` as a dict of float64 arrays."""
    return {str(key): np.array(item, dtype=np.float64) for key, item in value.items()}


class JuliaFitted:
    """A model living in Julia, numpy in and numpy out, like the torch backend's `TorchFitted`.

    `history` has one row per epoch with the torch trainer's keys: epoch, loss, nfe_forward,
    nfe_backward (means per batch), seconds (the epoch's training time), train_loss,
    train_acc, test_loss, test_acc (accuracies for classification).
    """

    def __init__(
        self,
        session: JuliaSession,
        model: ModelSpec,
        solver: SolverSpec,
        train: TrainSpec,
        in_dim: int,
        out_dim: int,
        loss: str,
    ):
        self.session = session
        self.model_spec, self.solver_spec, self.train_spec = model, solver, train
        self.in_dim, self.out_dim, self.loss = in_dim, out_dim, loss
        self.shapes = weight_shapes(model, in_dim, out_dim)
        self.history: list[dict[str, Any]] = []
        self.handle = self._call(
            "init_model",
            kind=model.kind,
            in_dims=in_dim,
            out_dims=out_dim,
            hidden=model.hidden,
            augment_dim=model.augment_dim,
            activation=model.activation,
            time_dependent=model.time_dependent,
            degree=model.degree,
            n_pieces=model.n_pieces,
            depth=model.depth,
            solver=solver_name(solver.solver, field="solver.solver", error=SpecError),
            rtol=float(solver.rtol),
            atol=float(solver.atol),
            gradient=julia_gradient(solver),
            dt=None if solver.dt is None else float(solver.dt),
            max_steps=solver.max_steps,
            t1=float(solver.t1),
            lr=float(train.lr),
            weight_decay=float(train.weight_decay),
            seed=train.seed,
            device=train.device,
            loss=loss,
        )

    def __repr__(self) -> str:
        return (
            f"JuliaFitted(kind={self.model_spec.kind!r}, solver={self.solver_spec.solver!r}, "
            f"gradient={self.solver_spec.gradient!r}, epochs={len(self.history)})"
        )

    # -- calls into Julia ------------------------------------------------------------------
    def _call(self, name: str, *args: Any, **kwargs: Any) -> Any:
        function = getattr(self.session.PyANODE, name)
        try:
            return function(*args, **kwargs)
        except self.session.juliacall.JuliaError as err:
            raise _translate(self.session, err) from None

    # -- training --------------------------------------------------------------------------
    def train_epoch(
        self, data: Dataset, epoch: int, test_data: Dataset | None = None
    ) -> dict[str, Any]:
        """Train one epoch (0-based `epoch` picks the batch order) and append its history row.

        Raises:
            TrainingDiverged: when a batch loss is NaN or infinite.
            SolverError: when a solve fails (step budget, step underflow, NaN).
        """
        spec = self.train_spec
        steps = _numpy_dict(
            self._call(
                "train_epoch_b",
                self.handle,
                _inputs(data.x, self.in_dim),
                _targets(data.y, self.loss),
                batch_size=spec.batch_size,
                order=batch_order(spec.seed, epoch, len(data)),
            )
        )
        losses = steps["loss"]
        if not math.isfinite(losses[-1]):
            raise TrainingDiverged(epoch, len(losses) - 1, float(losses[-1]))
        row: dict[str, Any] = {
            "epoch": epoch + 1,
            "loss": float(losses.mean()),
            "nfe_forward": float(steps["nfe_forward"].mean()),
            "nfe_backward": float(steps["nfe_backward"].mean()),
            "seconds": float(steps["seconds"].sum()),
        }
        row.update(self.evaluate(data, "train"))
        if test_data is not None:
            row.update(self.evaluate(test_data, "test"))
        self.history.append(row)
        return row

    def evaluate(self, data: Dataset, prefix: str) -> dict[str, float]:
        """`{prefix}_loss` and, for classification, `{prefix}_acc` on all of `data`."""
        metrics = _numpy_dict(
            self._call(
                "evaluate",
                self.handle,
                _inputs(data.x, self.in_dim),
                _targets(data.y, self.loss),
            )
        )
        return {f"{prefix}_{key}": float(value[0]) for key, value in sorted(metrics.items())}

    def loss_and_gradient(self, x: np.ndarray, y: np.ndarray) -> dict[str, Any]:
        """Loss on (x, y) as one batch, its gradient (shared flat order) and the NFE; the
        parameters do not change. Keys: loss, gradient, nfe_forward, nfe_backward."""
        out = _numpy_dict(
            self._call(
                "loss_and_gradient",
                self.handle,
                _inputs(x, self.in_dim),
                _targets(y, self.loss),
            )
        )
        return {
            "loss": float(out["loss"][0]),
            "gradient": out["gradient"],
            "nfe_forward": int(out["nfe_forward"][0]),
            "nfe_backward": int(out["nfe_backward"][0]),
        }

    # -- the Fitted interface --------------------------------------------------------------
    def logits(self, x: np.ndarray) -> np.ndarray:
        """The head's raw outputs (N, outputs)."""
        raw = np.array(self._call("logits", self.handle, _inputs(x, self.in_dim)), np.float32)
        return np.ascontiguousarray(raw.T)

    def predict(self, x: np.ndarray) -> np.ndarray:
        """Class probabilities (N, classes) for classification, the outputs for regression."""
        out = np.array(self._call("predict_proba", self.handle, _inputs(x, self.in_dim)))
        return np.ascontiguousarray(out.T, dtype=np.float32)

    def features(self, x: np.ndarray) -> np.ndarray:
        """The block's end state (N, state dim): z(t1), z(T(x)) for adaptive depth, the last
        residual block's output for the ResNet."""
        out = np.array(self._call("features", self.handle, _inputs(x, self.in_dim)))
        return np.ascontiguousarray(out.T, dtype=np.float32)

    def trajectories(self, x: np.ndarray, ts: np.ndarray) -> np.ndarray:
        """States z(t) at the times `ts` (in [0, t1]; for adaptive depth, fractions in [0, 1]
        of each sample's end time T(x)), shape (len(ts), N, state dim).

        Raises:
            TypeError: for the ResNet, which has no continuous trajectories (as in torch).
        """
        if self.model_spec.kind == "resnet":
            raise TypeError("model.kind='resnet' has no continuous trajectories")
        times = np.ascontiguousarray(ts, dtype=np.float64).reshape(-1)
        out = np.array(self._call("trajectories", self.handle, _inputs(x, self.in_dim), times))
        return np.ascontiguousarray(out.transpose(2, 1, 0), dtype=np.float32)

    def forward_nfe(self, x: np.ndarray) -> int:
        """Vector-field evaluations of one forward solve on `x` as a single batch."""
        return int(self._call("forward_nfe", self.handle, _inputs(x, self.in_dim)))

    def parameters(self) -> np.ndarray:
        """All parameters as one float32 vector in the shared order."""
        return np.array(self._call("parameters", self.handle), dtype=np.float32)

    def set_parameters(self, vector: np.ndarray) -> None:
        """Load a vector in the shared order (e.g. torch's `flat_parameters`); resets Adam.

        Raises:
            ValueError: for a vector of the wrong shape.
        """
        flat = np.ascontiguousarray(vector, dtype=np.float32)
        n = parameter_count(self.shapes)
        if flat.ndim != 1 or flat.shape[0] != n:
            raise ValueError(f"parameter vector must have shape ({n},), got {flat.shape}")
        self._call("set_parameters_b", self.handle, flat)


def julia_gradient(solver: SolverSpec) -> str:
    """`solver.gradient` if the Julia backend has it.

    Raises:
        SpecError: naming the gradient methods the Julia backend has.
    """
    return check_choice("solver.gradient", solver.gradient, gradients_of("julia"), error=SpecError)


def _translate(session: JuliaSession, err: Exception) -> Exception:
    """A pyanode exception for a Julia exception thrown by PyANODE (else `err` itself).

    juliacall hands the exception over as a `RawValue`, whose attributes are `RawValue`s again
    (no `float()`, no `int()`); `_jl_any()` makes it an `AnyValue`, whose attributes come back
    as Python numbers and strings (PythonCall's `JlWrap/raw.jl` and `any.jl`).
    """
    jl, package = session.jl, session.PyANODE
    exc = err.exception._jl_any()  # type: ignore[attr-defined]
    text = str(jl.sprint(jl.showerror, exc))
    if jl.isa(exc, package.SolverFailure):
        reason = str(exc.reason)
        known = reason in SOLVER_FAILURES
        return SolverError(reason, float(exc.t), math.nan, int(exc.nfe), None if known else text)
    if jl.isa(exc, package.OptionError):
        return SpecError(text)
    if jl.isa(exc, package.DeviceError):
        return JuliaUnavailable(text)
    if jl.isa(exc, jl.Base.DimensionMismatch) or jl.isa(exc, jl.Base.ArgumentError):
        return ValueError(text)
    return err


class JuliaBackend:
    """The Julia implementation (PyANODE.jl through juliacall), for users who have Julia.

    Kinds: all of `ModelSpec`'s (node, anode, il-node, data-controlled, the depth-variant
    chebyshev, fourier and stacked, adaptive-depth, and the resnet baseline), on vector data.
    Solvers: all of `SolverSpec`'s (tsit5, dp5, bosh3 adaptive; euler, midpoint, rk4 with a
    fixed step). Gradients: backprop
    (ReverseDiffAdjoint; TrackerAdjoint on CUDA), adjoint (BacksolveAdjoint), and
    SciMLSensitivity's interpolating, quadrature and Gauss adjoints. `solver.seminorm` and
    `train.threads` are torch settings and have no effect here.
    """

    name = "julia"

    def build(
        self,
        model: ModelSpec,
        solver: SolverSpec,
        train: TrainSpec,
        data: Dataset,
    ) -> JuliaFitted:
        """The untrained model for `data`'s shapes (parameters from `train.seed`).

        Raises:
            SpecError, DataError: for a kind, gradient, loss or data the Julia backend does not
                take (checked before Julia starts; image data is torch-only).
            JuliaUnavailable: when Julia cannot be used, with the reason and the fix.
        """
        loss = loss_for(train, data)
        julia_gradient(solver)
        out_dim = data.n_outputs
        weight_shapes(model, data.n_features, out_dim)  # SpecError for a kind Julia lacks
        if data.x.ndim != 2:
            raise DataError(
                f"the Julia backend takes vector data (N, D), got {data.name!r} with x of shape "
                f"{data.x.shape}; image models are only in the torch backend"
            )
        session = load(cuda=train.device == "cuda")
        return JuliaFitted(session, model, solver, train, data.n_features, out_dim, loss)

    def fit(
        self,
        model: ModelSpec,
        solver: SolverSpec,
        train: TrainSpec,
        train_data: Dataset,
        test_data: Dataset | None = None,
        *,
        on_epoch: EpochHook | None = None,
        progress: bool | None = None,
    ) -> JuliaFitted:
        """Build the model and train it for `train.epochs` epochs (one Julia call each).

        Arguments:
            on_epoch: called as `on_epoch(fitted, row)` after each epoch.
            progress: show a progress bar (None: only on a terminal).

        Raises:
            SpecError, DataError, JuliaUnavailable: see `build`.
            TrainingDiverged, SolverError: as the torch trainer.
        """
        fitted = self.build(model, solver, train, train_data)
        disable = None if progress is None else not progress
        with tqdm(total=train.epochs, disable=disable, unit="epoch", leave=False) as bar:
            for epoch in range(train.epochs):
                row = fitted.train_epoch(train_data, epoch, test_data)
                bar.update(1)
                bar.set_postfix(loss=f"{row['loss']:.3g}", nfe=f"{row['nfe_forward']:.0f}")
                if on_epoch is not None:
                    on_epoch(fitted, row)
        return fitted
