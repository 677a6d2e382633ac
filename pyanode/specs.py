"""Backend-neutral specs of a model, a solver and a training run.

Specs are frozen dataclasses of plain values: they validate on construction (an unknown name lists
the accepted ones, an impossible value names the field), round-trip through dicts, JSON and TOML,
and are read the same way by the torch and the Julia backends.
"""

from __future__ import annotations

import dataclasses
import json
import math
import sys
from dataclasses import dataclass, field, fields
from typing import Any, ClassVar, TypeVar

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover
    import tomli as tomllib

import tomli_w

from pyanode._errors import SpecError

MODEL_KINDS = (
    "resnet",
    "node",
    "anode",
    "il-node",
    "data-controlled",
    "chebyshev",
    "fourier",
    "stacked",
    "adaptive-depth",
)
ACTIVATIONS = ("relu", "tanh", "softplus", "elu", "sigmoid")
SOLVER_NAMES = ("euler", "midpoint", "rk4", "bosh3", "dp5", "tsit5")
ADAPTIVE_SOLVERS = ("bosh3", "dp5", "tsit5")
GRADIENT_NAMES = (
    "backprop",
    "adjoint",
    "interpolating-adjoint",
    "quadrature-adjoint",
    "gauss-adjoint",
)
LOSSES = ("auto", "cross-entropy", "mse")
DEVICES = ("cpu", "cuda")

S = TypeVar("S", bound="_Spec")


def _choice(name: str, value: Any, accepted: tuple[str, ...]) -> None:
    if value not in accepted:
        raise SpecError(f"{name}={value!r} is not known; accepted: {', '.join(accepted)}")


def _positive(name: str, value: Any, *, allow_zero: bool = False, integer: bool = False) -> None:
    kind = int if integer else (int, float)
    if isinstance(value, bool) or not isinstance(value, kind):
        what = "an integer" if integer else "a number"
        raise SpecError(f"{name} must be {what}, got {value!r} of type {type(value).__name__}")
    if not math.isfinite(value) or value < 0 or (value == 0 and not allow_zero):
        bound = ">= 0" if allow_zero else "> 0"
        raise SpecError(f"{name} must be finite and {bound}, got {value!r}")


class _Spec:
    """Dict/JSON/TOML round trip shared by the specs; unknown keys raise."""

    section: ClassVar[str]

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)  # type: ignore[call-overload]

    @classmethod
    def from_dict(cls: type[S], data: dict[str, Any]) -> S:
        if not isinstance(data, dict):
            raise SpecError(f"[{cls.section}] must be a table of keys, got {type(data).__name__}")
        known = {f.name for f in fields(cls)}  # type: ignore[arg-type]
        unknown = sorted(set(data) - known)
        if unknown:
            raise SpecError(
                f"unknown key(s) {', '.join(unknown)} in [{cls.section}]; "
                f"accepted: {', '.join(sorted(known))}"
            )
        return cls(**data)

    def replace(self: S, **changes: Any) -> S:
        unknown = sorted(set(changes) - {f.name for f in fields(self)})  # type: ignore[arg-type]
        if unknown:
            raise SpecError(f"unknown field(s) {', '.join(unknown)} for {type(self).__name__}")
        return dataclasses.replace(self, **changes)  # type: ignore[type-var]


@dataclass(frozen=True)
class ModelSpec(_Spec):
    """What network to build.

    Arguments:
        kind: one of `MODEL_KINDS`: `node` (Chen et al.), `anode` (Dupont et al.: append
            `augment_dim` zeros), `il-node` (learned linear input map to `in_dim + augment_dim`
            and output map), `data-controlled` (the input x enters the vector field at every
            evaluation), `chebyshev` / `fourier` (depth-variant weights theta(t) on a truncated
            basis of degree `degree`), `stacked` (piecewise-constant theta(t) over `n_pieces`),
            `adaptive-depth` (a learned end time per sample), `resnet` (the discrete baseline).
        hidden: width of the hidden layers of the vector field (Dupont App. E:
            d + 1 -> hidden -> act -> hidden -> act -> d).
        augment_dim: zeros appended to the state (anode) or extra latent dimensions (il-node).
        activation: one of `ACTIVATIONS`.
        degree: degree of the depth-variant basis: Chebyshev polynomials T_0..T_degree
            (degree + 1 terms), Fourier harmonics 0..degree (2 * degree + 1 terms).
        n_pieces: number of constant pieces of `stacked`.
        depth: residual blocks of `resnet`.
        time_dependent: concatenate t to the input of the vector field.
    """

    section: ClassVar[str] = "model"

    kind: str = "node"
    hidden: int = 32
    augment_dim: int = 0
    activation: str = "relu"
    degree: int = 4
    n_pieces: int = 3
    depth: int = 1
    time_dependent: bool = True

    def __post_init__(self) -> None:
        _choice("model.kind", self.kind, MODEL_KINDS)
        _choice("model.activation", self.activation, ACTIVATIONS)
        _positive("model.hidden", self.hidden, integer=True)
        _positive("model.augment_dim", self.augment_dim, allow_zero=True, integer=True)
        _positive("model.degree", self.degree, integer=True)
        _positive("model.n_pieces", self.n_pieces, integer=True)
        _positive("model.depth", self.depth, integer=True)
        if not isinstance(self.time_dependent, bool):
            raise SpecError(f"model.time_dependent must be true or false, got {self.time_dependent!r}")
        if self.kind == "anode" and self.augment_dim == 0:
            raise SpecError("model.augment_dim must be > 0 for kind 'anode' (use kind 'node' for none)")


@dataclass(frozen=True)
class SolverSpec(_Spec):
    """How to integrate and differentiate the ODE block.

    Arguments:
        solver: one of `SOLVER_NAMES`; `bosh3`, `dp5` and `tsit5` are adaptive.
        rtol, atol: error tolerances of the adaptive solvers.
        gradient: `backprop` (through the solver steps) or `adjoint` (backsolve adjoint,
            Chen et al.); the Julia backend also has SciMLSensitivity's interpolating, quadrature
            and Gauss adjoints.
        dt: fixed step; required by the fixed-step solvers, optional first step otherwise.
        max_steps: step budget of one solve; exceeding it raises `SolverError`.
        t1: end time of the flow (t0 = 0).
        seminorm: adjoint error control on the state and adjoint only (Kidger et al. 2021).
    """

    section: ClassVar[str] = "solver"

    solver: str = "dp5"
    rtol: float = 1e-3
    atol: float = 1e-3
    gradient: str = "backprop"
    dt: float | None = None
    max_steps: int = 10_000
    t1: float = 1.0
    seminorm: bool = True

    def __post_init__(self) -> None:
        _choice("solver.solver", self.solver, SOLVER_NAMES)
        _choice("solver.gradient", self.gradient, GRADIENT_NAMES)
        _positive("solver.rtol", self.rtol)
        _positive("solver.atol", self.atol, allow_zero=True)
        _positive("solver.max_steps", self.max_steps, integer=True)
        _positive("solver.t1", self.t1)
        if self.rtol < 1e-14:
            raise SpecError(f"solver.rtol={self.rtol!r} is below machine precision; use >= 1e-14")
        if self.dt is not None:
            _positive("solver.dt", self.dt)
        elif not self.adaptive:
            raise SpecError(
                f"solver.solver={self.solver!r} has no error estimate, so it needs a fixed step: "
                f"set solver.dt (e.g. 0.05), or choose one of {', '.join(ADAPTIVE_SOLVERS)}"
            )

    @property
    def adaptive(self) -> bool:
        return self.solver in ADAPTIVE_SOLVERS


@dataclass(frozen=True)
class TrainSpec(_Spec):
    """How to train: Adam with `lr` and `weight_decay`, seeded shuffling and initialisation.

    Arguments:
        loss: `auto` picks cross-entropy for classification data and MSE for regression.
        threads: torch intra-op threads for this run (None keeps the process setting).
    """

    section: ClassVar[str] = "train"

    epochs: int = 5
    batch_size: int = 96
    lr: float = 1e-3
    weight_decay: float = 0.0
    seed: int = 0
    device: str = "cpu"
    loss: str = "auto"
    threads: int | None = None

    def __post_init__(self) -> None:
        _positive("train.epochs", self.epochs, allow_zero=True, integer=True)
        _positive("train.batch_size", self.batch_size, integer=True)
        _positive("train.lr", self.lr)
        _positive("train.weight_decay", self.weight_decay, allow_zero=True)
        _positive("train.seed", self.seed, allow_zero=True, integer=True)
        _choice("train.device", self.device, DEVICES)
        _choice("train.loss", self.loss, LOSSES)
        if self.threads is not None:
            _positive("train.threads", self.threads, integer=True)


@dataclass(frozen=True)
class RunSpec(_Spec):
    """One trial: a dataset (by registry name and keyword arguments) and the three specs."""

    section: ClassVar[str] = "run"

    dataset: str = "three-spheres"
    dataset_kwargs: dict[str, Any] = field(default_factory=dict)
    test_fraction: float = 0.2
    backend: str = "torch"
    model: ModelSpec = field(default_factory=ModelSpec)
    solver: SolverSpec = field(default_factory=SolverSpec)
    train: TrainSpec = field(default_factory=TrainSpec)

    def __post_init__(self) -> None:
        _choice("run.backend", self.backend, ("torch", "julia", "auto"))
        if not isinstance(self.dataset, str) or not self.dataset:
            raise SpecError(f"run.dataset must be a dataset name, got {self.dataset!r}")
        if not isinstance(self.dataset_kwargs, dict):
            raise SpecError(f"run.dataset_kwargs must be a table, got {self.dataset_kwargs!r}")
        if not (isinstance(self.test_fraction, (int, float)) and 0 <= self.test_fraction < 1):
            raise SpecError(f"run.test_fraction must be in [0, 1), got {self.test_fraction!r}")
        for name, cls in (("model", ModelSpec), ("solver", SolverSpec), ("train", TrainSpec)):
            if not isinstance(getattr(self, name), cls):
                raise SpecError(f"run.{name} must be a {cls.__name__}, got {getattr(self, name)!r}")

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> RunSpec:
        data = dict(data)
        parts = {
            name: spec.from_dict(data.pop(name, {}))
            for name, spec in (("model", ModelSpec), ("solver", SolverSpec), ("train", TrainSpec))
        }
        return super().from_dict({**data, **parts})

    def to_json(self) -> str:
        return json.dumps(self.to_dict(), sort_keys=True)

    @classmethod
    def from_json(cls, text: str) -> RunSpec:
        return cls.from_dict(json.loads(text))

    def to_toml(self) -> str:
        return tomli_w.dumps(_drop_none(self.to_dict()))

    @classmethod
    def from_toml(cls, text: str) -> RunSpec:
        try:
            data = tomllib.loads(text)
        except tomllib.TOMLDecodeError as err:
            raise SpecError(f"malformed TOML: {err}") from None
        return cls.from_dict(data)


def _drop_none(data: dict[str, Any]) -> dict[str, Any]:
    """TOML has no null: leave unset optional fields out (their default is None)."""
    return {
        k: _drop_none(v) if isinstance(v, dict) else v for k, v in data.items() if v is not None
    }
