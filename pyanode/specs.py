"""Backend-neutral specs of a model, a solver, a training run and a trial's data.

Specs are frozen dataclasses of plain values: they validate on construction (an unknown name lists
the accepted ones, an impossible value names the field), round-trip through dicts, JSON and TOML,
and are read the same way by the torch and the Julia backends. Each field carries its one-line
help in `metadata["help"]`: the command line builds its options from these fields
(`pyanode.cli._options`), so an option, its default and its help are written once, here.
"""

from __future__ import annotations

import dataclasses
import json
import math
import os
import sys
import typing
from dataclasses import dataclass, fields
from typing import Any, ClassVar, TypeVar

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover
    import tomli as tomllib

import tomli_w

from pyanode._errors import SpecError
from pyanode._names import (
    ACTIVATIONS,
    ADAPTIVE_SOLVERS,
    BACKENDS,
    DTYPES,
    GRADIENTS,
    LOSSES,
    MODEL_KINDS,
    READOUTS,
    SOLVER_ALIASES,
    SOLVERS,
    solver_name,
)
from pyanode._validate import (
    check_bool,
    check_choice,
    check_int,
    check_keys,
    check_number,
    check_seed,
)

S = TypeVar("S", bound="_Spec")


def setting(default: Any, help: str, **metadata: Any) -> Any:
    """A dataclass field with its default and the one-line help of its command-line option.

    Metadata the option generator reads: `choices` (accepted names), `option` (the option's
    name when it is not the field's), `type` (parses the option where the default's type does
    not), `shown` (replaces the default in --help).
    """
    if isinstance(default, (dict, list)):
        return dataclasses.field(
            default_factory=lambda: type(default)(default), metadata={"help": help, **metadata}
        )
    return dataclasses.field(default=default, metadata={"help": help, **metadata})


class _Spec:
    """Dict/JSON/TOML round trip shared by the specs; unknown keys raise."""

    section: ClassVar[str]

    def to_dict(self) -> dict[str, Any]:
        """The fields as plain (mutable) dicts, lists of tuples kept as tuples."""
        return _thaw(dataclasses.asdict(self))  # type: ignore[call-overload]

    @classmethod
    def from_dict(cls: type[S], data: dict[str, Any]) -> S:
        if not isinstance(data, dict):
            raise SpecError(f"[{cls.section}] must be a table of keys, got {type(data).__name__}")
        known = [f.name for f in fields(cls)]  # type: ignore[arg-type]
        check_keys(f"[{cls.section}]", data, known, error=SpecError)
        return cls(**data)

    def replace(self: S, **changes: Any) -> S:
        unknown = sorted(set(changes) - {f.name for f in fields(self)})  # type: ignore[arg-type]
        if unknown:
            raise SpecError(f"unknown field(s) {', '.join(unknown)} for {type(self).__name__}")
        return dataclasses.replace(self, **changes)  # type: ignore[type-var]


def _positive_int(name: str, value: Any, low: int = 1) -> None:
    check_int(name, value, low=low, error=SpecError)


def _float(spec: Any, name: str, section: str, **bounds: Any) -> float:
    """Check the float field `name` of `spec` and store it as a float, so that `lr = 1` and
    `lr = 1.0` are the same spec (and the same trial)."""
    value = check_number(f"{section}.{name}", getattr(spec, name), error=SpecError, **bounds)
    object.__setattr__(spec, name, value)
    return value


class FrozenDict(dict):
    """A dict that cannot be changed: the keyword arguments held by a frozen spec (change a
    spec with `spec.replace(dataset_kwargs={...})`)."""

    def _refuse(self, *args: Any, **kwargs: Any) -> Any:
        raise TypeError(
            "the arguments of a spec cannot be changed in place: make a new spec with "
            "spec.replace(dataset_kwargs={...})"
        )

    __setitem__ = __delitem__ = __ior__ = _refuse
    clear = pop = popitem = setdefault = update = _refuse

    def __reduce__(self) -> tuple[Any, ...]:  # pickle and deepcopy without __setitem__
        return (type(self), (dict(self),))

    def __copy__(self) -> FrozenDict:
        return self

    def __deepcopy__(self, memo: dict[int, Any]) -> FrozenDict:
        return self


def _thaw(value: Any) -> Any:
    """`value` with every `FrozenDict` as a plain dict, all the way down."""
    if isinstance(value, dict):
        return {k: _thaw(v) for k, v in value.items()}
    if isinstance(value, tuple):
        return tuple(_thaw(v) for v in value)
    return value


def _freeze(value: Any) -> Any:
    """`value` with its tables as `FrozenDict` and its lists as tuples, all the way down."""
    if isinstance(value, dict):
        return FrozenDict({k: _freeze(v) for k, v in value.items()})
    if isinstance(value, (list, tuple)):
        return tuple(_freeze(v) for v in value)
    return value


def _check_device(name: str, value: Any) -> None:
    """A device string torch can parse (torch is imported only for the unusual ones)."""
    if isinstance(value, str) and value in ("cpu", "cuda"):
        return
    if not isinstance(value, str) or not value:
        raise SpecError(f"{name} must be a torch device such as 'cpu' or 'cuda:1', got {value!r}")
    import torch

    try:
        torch.device(value)
    except (RuntimeError, ValueError):
        raise SpecError(
            f"{name}={value!r} is not a torch device; examples: cpu, cuda, cuda:1, mps"
        ) from None


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
        readout: `linear` (a learned layer after the flow, §2 of Dupont et al.) or `flow` (the
            output is the first coordinates of the final state: the flow alone fits the data,
            as Prop. 1 of Dupont et al. is stated; torch backend only).
    """

    section: ClassVar[str] = "model"

    kind: str = setting("node", "model kind", choices=MODEL_KINDS, option="model")
    hidden: int = setting(32, "hidden width of the vector field")
    augment_dim: int = setting(0, "zeros appended (anode) / extra latents (il-node)")
    activation: str = setting("relu", "activation of the vector field", choices=ACTIVATIONS)
    degree: int = setting(4, "degree of the chebyshev / fourier basis")
    n_pieces: int = setting(3, "pieces of a stacked NODE")
    depth: int = setting(1, "residual blocks of a resnet")
    time_dependent: bool = setting(True, "give the vector field the time t")
    readout: str = setting("linear", "linear layer after the flow, or the flow alone",
                           choices=READOUTS)  # fmt: skip

    def __post_init__(self) -> None:
        check_choice("model.kind", self.kind, MODEL_KINDS, error=SpecError)
        check_choice("model.activation", self.activation, ACTIVATIONS, error=SpecError)
        check_choice("model.readout", self.readout, READOUTS, error=SpecError)
        _positive_int("model.hidden", self.hidden)
        _positive_int("model.augment_dim", self.augment_dim, low=0)
        _positive_int("model.degree", self.degree)
        _positive_int("model.n_pieces", self.n_pieces)
        _positive_int("model.depth", self.depth)
        check_bool("model.time_dependent", self.time_dependent, error=SpecError)
        if self.kind == "anode" and self.augment_dim == 0:
            raise SpecError(
                "model.augment_dim must be > 0 for kind 'anode' (use kind 'node' for none)"
            )
        if self.kind == "node" and self.augment_dim > 0:
            raise SpecError(
                f"model.augment_dim={self.augment_dim} with kind 'node' would build an ANODE; "
                "use kind 'anode' to augment the state (or augment_dim = 0)"
            )


@dataclass(frozen=True)
class SolverSpec(_Spec):
    """How to integrate and differentiate the ODE block.

    Arguments:
        solver: one of `SOLVERS` (aliases such as `dopri5` are stored by their canonical name);
            `bosh3`, `dp5` and `tsit5` are adaptive.
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

    solver: str = setting("dp5", "ODE solver", choices=(*SOLVERS, *SOLVER_ALIASES))
    rtol: float = setting(1e-3, "relative tolerance (adaptive solvers)")
    atol: float = setting(1e-3, "absolute tolerance (adaptive solvers)")
    gradient: str = setting("backprop", "gradient method", choices=tuple(GRADIENTS))
    dt: float | None = setting(None, "fixed step (euler, midpoint, rk4), first step otherwise",
                               type=float)  # fmt: skip
    max_steps: int = setting(10_000, "step budget of one solve")
    t1: float = setting(1.0, "end time of the flow (t0 = 0)")
    seminorm: bool = setting(True, "adjoint error control on state and adjoint only")

    def __post_init__(self) -> None:
        object.__setattr__(self, "solver", solver_name(self.solver, field="solver.solver",
                                                       error=SpecError))  # fmt: skip
        check_choice("solver.gradient", self.gradient, GRADIENTS, error=SpecError)
        if _float(self, "rtol", "solver", low=0, strict_low=True) < 1e-14:
            raise SpecError(f"solver.rtol={self.rtol!r} is below machine precision; use >= 1e-14")
        _float(self, "atol", "solver", low=0)
        _positive_int("solver.max_steps", self.max_steps)
        _float(self, "t1", "solver", low=0, strict_low=True)
        check_bool("solver.seminorm", self.seminorm, error=SpecError)
        if self.dt is not None:
            _float(self, "dt", "solver", low=0, strict_low=True)
            self._check_steps()
        elif not self.adaptive:
            raise SpecError(
                f"solver.solver={self.solver!r} has no error estimate, so it needs a fixed step: "
                f"set solver.dt (e.g. 0.05), or choose one of {', '.join(ADAPTIVE_SOLVERS)}"
            )

    def _check_steps(self) -> None:
        """A fixed step must reach t1 within the step budget (checked here, before anything is
        built: a tiny dt would otherwise cost time and memory in proportion to 1/dt)."""
        steps = self.t1 / self.dt  # inf for a dt that underflows the ratio
        if self.adaptive or steps <= self.max_steps * (1 + 1e-9):
            return
        count = f"{steps:.3g}" if math.isfinite(steps) else "more than 1e308"
        raise SpecError(
            f"solver.dt={self.dt!r} needs {count} steps to reach solver.t1={self.t1!r}, more "
            f"than solver.max_steps={self.max_steps}: use dt >= {self.t1 / self.max_steps:.3g} "
            "or raise max_steps"
        )

    @property
    def adaptive(self) -> bool:
        return self.solver in ADAPTIVE_SOLVERS


@dataclass(frozen=True)
class TrainSpec(_Spec):
    """How to train: Adam with `lr` and `weight_decay`, seeded shuffling and initialisation.

    Arguments:
        device: a torch device (`cpu`, `cuda`, `cuda:1`, `mps`, ...), parsed by torch; whether
            it is available is checked when training starts.
        dtype: the floating-point type of the model and the data (`float32` or `float64`;
            the Julia backend trains in float32 only).
        loss: `auto` picks cross-entropy for classification data and MSE for regression.
        threads: torch intra-op threads for this run (None keeps the process setting).
    """

    section: ClassVar[str] = "train"

    epochs: int = setting(5, "training epochs")
    batch_size: int = setting(96, "mini-batch size")
    lr: float = setting(1e-3, "Adam learning rate")
    weight_decay: float = setting(0.0, "Adam weight decay")
    seed: int = setting(0, "seed of the weights, the batches and the random split")
    device: str = setting("cpu", "torch device: cpu, cuda, cuda:1, mps, ...")
    dtype: str = setting("float32", "floating-point type of the model and data", choices=DTYPES)
    loss: str = setting("auto", "loss (auto: by the data's task)", choices=LOSSES)
    threads: int | None = setting(None, "torch threads", type=int, shown="torch's choice")

    def __post_init__(self) -> None:
        _positive_int("train.epochs", self.epochs, low=0)
        _positive_int("train.batch_size", self.batch_size)
        _float(self, "lr", "train", low=0, strict_low=True)
        _float(self, "weight_decay", "train", low=0)
        check_seed("train.seed", self.seed, error=SpecError)
        _check_device("train.device", self.device)
        check_choice("train.dtype", self.dtype, DTYPES, error=SpecError)
        check_choice("train.loss", self.loss, LOSSES, error=SpecError)
        if self.threads is not None:
            _positive_int("train.threads", self.threads)


@dataclass(frozen=True)
class RunSpec(_Spec):
    """One trial: its data and the three specs.

    The data is the dataset registered as `dataset`, built with `dataset_kwargs`; its test set
    is one of (at most one may be set):

    - `test_fraction` > 0: a stratified random part of the dataset;
    - `test_kwargs`: an independent load of the dataset with these arguments overriding
      `dataset_kwargs` (`{seed = 1000}`: a fresh draw, as Table 1's test set; `{split = "test"}`:
      the set's own test split);
    - `test_slice`: the points whose polar angle lies in `[theta0, theta1]` (radians), removed
      from the training set (the slice-removed split of Dupont et al., Fig. 11c);

    or none (`test_fraction = 0`). `train_size` keeps a random subset of the training part.
    The random split and subset draw from `split_seed` (default: `train.seed`).
    """

    section: ClassVar[str] = "run"

    dataset: str = setting("three-spheres", "dataset name")
    dataset_kwargs: dict[str, Any] = setting({}, "argument of the dataset function",
                                             option="dataset-arg")  # fmt: skip
    test_fraction: float = setting(0.2, "random held-out fraction (0: none)")
    test_kwargs: dict[str, Any] | None = setting(
        None, "dataset arguments of an independent test set", option="test-arg"
    )
    test_slice: tuple[float, float] | None = setting(
        None, "test set: the polar-angle slice THETA0,THETA1 (radians)", type=float
    )
    train_size: int | None = setting(None, "random training subset of this size", type=int,
                                     shown="all")  # fmt: skip
    split_seed: int | None = setting(None, "seed of the random split and subset", type=int,
                                     shown="train.seed")  # fmt: skip
    backend: str = setting("torch", "backend", choices=BACKENDS)
    model: ModelSpec = dataclasses.field(default_factory=ModelSpec)
    solver: SolverSpec = dataclasses.field(default_factory=SolverSpec)
    train: TrainSpec = dataclasses.field(default_factory=TrainSpec)

    def __post_init__(self) -> None:
        check_choice("run.backend", self.backend, BACKENDS, error=SpecError)
        if not isinstance(self.dataset, str) or not self.dataset:
            raise SpecError(f"run.dataset must be a dataset name, got {self.dataset!r}")
        for name in ("dataset_kwargs", "test_kwargs"):
            value = getattr(self, name)
            if value is None and name == "test_kwargs":
                continue
            if not isinstance(value, dict):
                raise SpecError(f"run.{name} must be a table of arguments, got {value!r}")
            object.__setattr__(self, name, _freeze(canonical_kwargs(self.dataset, value)))
        _float(self, "test_fraction", "run", low=0, high=1, strict_high=True)
        if self.test_slice is not None:
            self._check_slice()
        given = [
            name
            for name, value in (
                ("test_fraction", self.test_fraction or None),
                ("test_kwargs", self.test_kwargs),
                ("test_slice", self.test_slice),
            )
            if value is not None
        ]
        if len(given) > 1:
            raise SpecError(
                f"run: {' and '.join(given)} both make a test set; set one (test_fraction = 0 "
                "when test_kwargs or test_slice gives the test set)"
            )
        if self.train_size is not None:
            _positive_int("run.train_size", self.train_size)
        if self.split_seed is not None:
            check_seed("run.split_seed", self.split_seed, error=SpecError)
        for name, cls in (("model", ModelSpec), ("solver", SolverSpec), ("train", TrainSpec)):
            if not isinstance(getattr(self, name), cls):
                raise SpecError(f"run.{name} must be a {cls.__name__}, got {getattr(self, name)!r}")

    def _check_slice(self) -> None:
        value = self.test_slice
        if not isinstance(value, (list, tuple)) or len(value) != 2:
            raise SpecError(f"run.test_slice must be two angles [theta0, theta1], got {value!r}")
        angles = tuple(check_number(f"run.test_slice[{i}]", v, error=SpecError)
                       for i, v in enumerate(value))  # fmt: skip
        object.__setattr__(self, "test_slice", angles)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> RunSpec:
        if not isinstance(data, dict):
            raise SpecError(f"[run] must be a table of keys, got {type(data).__name__}")
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
        try:
            data = json.loads(text)
        except (TypeError, ValueError) as err:
            raise SpecError(f"malformed JSON: {err}") from None
        return cls.from_dict(data)

    def to_toml(self) -> str:
        return tomli_w.dumps(_drop_none(self.to_dict()))

    @classmethod
    def from_toml(cls, text: str) -> RunSpec:
        try:
            data = tomllib.loads(text)
        except (tomllib.TOMLDecodeError, TypeError) as err:
            raise SpecError(f"malformed TOML: {err}") from None
        return cls.from_dict(data)


def read_config(path: str | os.PathLike[str]) -> str:
    """The text of the config file `path` (TOML, UTF-8).

    Raises:
        SpecError: naming the file and what is wrong with it (missing, a folder, unreadable,
            not UTF-8 text).
    """
    try:
        with open(path, encoding="utf-8") as f:
            return f.read()
    except UnicodeDecodeError as err:
        raise SpecError(f"config {str(path)!r} is not UTF-8 text ({err.reason} at byte "
                        f"{err.start}): save it as UTF-8 TOML") from None  # fmt: skip
    except IsADirectoryError:
        raise SpecError(f"config {str(path)!r} is a folder: give a TOML file") from None
    except OSError as err:
        raise SpecError(f"config {str(path)!r} cannot be read: {err.strerror}") from None


def canonical_kwargs(dataset: Any, kwargs: dict[str, Any]) -> dict[str, Any]:
    """`kwargs` with the integers given for float arguments of the dataset function as floats
    (`r1 = 1` and `r1 = 1.0` are the same data and the same trial); unchanged for an unknown
    dataset, whose name is checked when the trial is checked."""
    from pyanode.data import DATASETS  # numpy and the generators: only when a spec is made

    function = DATASETS.get(dataset) if isinstance(dataset, str) else None
    if function is None:
        return dict(kwargs)
    hints = typing.get_type_hints(function)
    return {
        k: float(v) if _is_float_argument(hints.get(k)) and _is_plain_int(v) else v
        for k, v in kwargs.items()
    }


def _is_float_argument(hint: Any) -> bool:
    return hint is float or float in typing.get_args(hint)


def _is_plain_int(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _drop_none(data: dict[str, Any]) -> dict[str, Any]:
    """TOML has no null: leave unset optional fields out (their default is None)."""
    return {
        k: _drop_none(v) if isinstance(v, dict) else v for k, v in data.items() if v is not None
    }
