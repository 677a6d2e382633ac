"""Sweeps: a grid of trials from one TOML file, run on an engine into one results folder.

The config has two tables, both optional:

```toml
[base]                        # a RunSpec: dataset, dataset_kwargs, test_fraction, backend,
dataset = "concentric-spheres"    # [base.model], [base.solver], [base.train]
[base.train]
epochs = 10

[grid]                        # dotted key -> list of values: the trials are the product
"model.kind" = ["node", "anode"]
"solver.rtol" = [1e-3, 1e-5]
"train.seed" = [0, 1, 2]
solver = [{solver = "dp5"}, {solver = "rk4", dt = 0.05}]   # a table: fields set together
```

A grid key is a RunSpec field (`dataset`, `test_fraction`, `backend`), a field of a section
(`model.kind`, `solver.rtol`, `train.lr`, ...), a dataset argument (`dataset_kwargs.dim`), or a
whole table (`model`, `solver`, `train`, `dataset_kwargs`, or `run` for the top level) whose
values are tables of fields set together; a `dataset_kwargs` table replaces the base's. Unknown
keys raise. Each trial is stored under `<out>/<trial_id>/` (see `pyanode.experiments.store`).
"""

from __future__ import annotations

import copy
import itertools
import json
import sys
from collections.abc import Sequence
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import Any

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover
    import tomli as tomllib

from pyanode._errors import DataError, SpecError
from pyanode._validate import check_registered
from pyanode.backends import check_supported
from pyanode.data import DATASETS
from pyanode.experiments.batch import BatchReport, run_trials
from pyanode.experiments.engines import AbstractEngine, LocalPool
from pyanode.experiments.runner import RunOptions, Trial
from pyanode.experiments.store import label_of
from pyanode.specs import ModelSpec, RunSpec, SolverSpec, TrainSpec, read_config

SECTIONS = {"model": ModelSpec, "solver": SolverSpec, "train": TrainSpec}
TOP_FIELDS = tuple(f.name for f in fields(RunSpec) if f.name not in SECTIONS)


@dataclass(frozen=True)
class Sweep:
    """A base RunSpec and a grid of overrides; `trials()` is their product in grid order.

    Arguments:
        base: the spec every trial starts from.
        grid: grid key -> non-empty list of distinct values (see the module docstring).

    Raises:
        SpecError: for an unknown grid key, a value list that is empty, not a list or repeats a
            value, or a grid point that makes an impossible spec.
        DataError: for an unknown dataset name or dataset argument.
    """

    base: RunSpec = field(default_factory=RunSpec)
    grid: dict[str, list[Any]] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if not isinstance(self.base, RunSpec):
            raise SpecError(f"[base] must be a RunSpec, got {type(self.base).__name__}")
        if not isinstance(self.grid, dict):
            raise SpecError(f"[grid] must be a table of lists, got {type(self.grid).__name__}")
        for key, values in self.grid.items():
            _check_key(key)
            _check_values(key, values)
        self.trials()  # every grid point must give a valid spec

    @classmethod
    def from_dict(cls, data: dict[str, Any], source: str = "sweep config") -> Sweep:
        """Build from the tables of a config: `base` (RunSpec-shaped) and `grid`."""
        if not isinstance(data, dict):
            raise SpecError(f"{source} must be a table, got {type(data).__name__}")
        unknown = sorted(set(data) - {"base", "grid"})
        if unknown:
            raise SpecError(
                f"{source}: unknown table(s) {', '.join(unknown)}; accepted: base, grid"
            )
        try:
            base = RunSpec.from_dict(data.get("base", {}))
        except SpecError as err:
            raise SpecError(f"{source}: [base]: {err}") from None
        try:
            return cls(base=base, grid=data.get("grid", {}))
        except (SpecError, DataError) as err:
            raise type(err)(f"{source}: {err}") from None

    @classmethod
    def from_toml(cls, text: str, source: str = "sweep config") -> Sweep:
        try:
            data = tomllib.loads(text)
        except tomllib.TOMLDecodeError as err:
            raise SpecError(f"{source}: malformed TOML: {err}") from None
        return cls.from_dict(data, source)

    def points(self) -> list[dict[str, Any]]:
        """The grid points: one `{grid key: value}` per trial, in product order."""
        keys, combos = list(self.grid), itertools.product(*self.grid.values())
        return [dict(zip(keys, combo, strict=True)) for combo in combos]

    def labels(self) -> list[str]:
        """One short text per grid point, e.g. `model.kind="anode" train.seed=2`."""
        return [label_of(point) for point in self.points()]

    def as_trials(self) -> list[Trial]:
        """The trials of the grid, in order, each keyed by its grid point."""
        return [Trial(spec, point) for spec, point in zip(self.trials(), self.points(),
                                                          strict=True)]  # fmt: skip

    def trials(self) -> list[RunSpec]:
        """The resolved spec of each grid point, in the order of `points()`."""
        base = self.base.to_dict()
        specs = []
        for point in self.points():
            data = copy.deepcopy(base)
            for key, value in point.items():
                _assign(data, key, value)
            try:
                spec = RunSpec.from_dict(data)
                check_runnable(spec)
            except (SpecError, DataError) as err:
                where = f"[grid] point {label_of(point)}" if point else "[base]"
                raise type(err)(f"{where}: {err}") from None
            specs.append(spec)
        return specs


def load_sweep(path: str | Path) -> Sweep:
    """Read a sweep config file (TOML); errors name the file."""
    return Sweep.from_toml(read_config(path), source=str(path))


def check_runnable(spec: RunSpec) -> None:
    """Check what a RunSpec cannot check alone: the dataset name and its keyword arguments, and
    what the backend supports.

    Raises:
        DataError: for an unknown dataset or dataset argument.
        SpecError: for a gradient method or readout the backend lacks.
    """
    check_registered(DATASETS, "dataset", spec.dataset, spec.dataset_kwargs, DataError)
    check_supported(spec)


def run_sweep(
    sweep: Sweep | Sequence[RunSpec],
    out: str | Path,
    *,
    engine: AbstractEngine | None = None,
    options: RunOptions | None = None,
) -> BatchReport:
    """Run every trial of `sweep` (or the given specs, in that order) into `out`.

    Finished trials (a `result.json` in their folder) are skipped, interrupted ones resume from
    their checkpoint; a trial that fails is recorded as failed and the others go on (see
    `run_trials` for the whole failure model).

    Arguments:
        sweep: a `Sweep`, or RunSpecs (duplicates, by trial id, run once).
        out: the results folder: `<out>/<trial_id>/` per trial and the manifest `trials.json`.
        engine: where the trials run (default: `LocalPool()`).
        options: failure policy, checkpoints, retry, overwrite (see `RunOptions`; default:
            record failures, checkpoint every epoch).

    Returns:
        A `BatchReport` (`summary()` for a text summary, `failed` for the failed ids).

    Raises:
        TrialFailed: with `options.on_failure="raise"`.
        SpecError, DataError, StoreError: as `run_trials`.
    """
    if isinstance(sweep, Sweep):
        trials = sweep.as_trials()
    else:
        trials = [Trial(spec) for spec in sweep]
        for trial in trials:
            check_runnable(trial.spec)
    return run_trials(trials, out, engine=engine or LocalPool(), options=options)


def _check_key(key: Any) -> None:
    """Raise unless `key` names a RunSpec field, a section field, a dataset argument or a table."""
    if not isinstance(key, str) or not key:
        raise SpecError(f"[grid] keys must be non-empty strings, got {key!r}")
    head, _, rest = key.partition(".")
    tables = ("run", "dataset_kwargs", *SECTIONS)
    accepted = f"{', '.join(TOP_FIELDS)}, dataset_kwargs.<argument>, run, " + ", ".join(
        f"{s}, {s}.<field>" for s in SECTIONS
    )
    if head in SECTIONS and rest:
        names = [f.name for f in fields(SECTIONS[head])]
        if rest not in names:
            raise SpecError(
                f"[grid] key {key!r}: {rest!r} is not a field of [{head}]; accepted: "
                f"{', '.join(names)}"
            )
    elif head == "dataset_kwargs" and rest:
        if "." in rest:
            raise SpecError(f"[grid] key {key!r}: dataset arguments are not nested")
    elif rest or (head not in TOP_FIELDS and head not in tables):
        raise SpecError(f"[grid] key {key!r} is not known; accepted: {accepted}")


def _check_values(key: str, values: Any) -> None:
    if not isinstance(values, list) or not values:
        raise SpecError(f"[grid] {key!r} must be a non-empty list of values, got {values!r}")
    head, _, rest = key.partition(".")
    is_table = not rest and head in ("run", "dataset_kwargs", *SECTIONS)
    seen = set()
    for value in values:
        if is_table and not isinstance(value, dict):
            raise SpecError(f"[grid] {key!r} takes tables of fields, got {value!r}")
        canonical = json.dumps(value, sort_keys=True, default=str)
        if canonical in seen:
            raise SpecError(f"[grid] {key!r} lists the value {value!r} twice")
        seen.add(canonical)


def _assign(data: dict[str, Any], key: str, value: Any) -> None:
    """Set grid `key` to `value` in the RunSpec dict `data`."""
    head, _, rest = key.partition(".")
    if head == "run":
        for sub, sub_value in value.items():
            _assign(data, sub, sub_value)
    elif rest:
        data[head][rest] = value
    elif head in SECTIONS:
        data[head].update(value)  # unknown fields raise in RunSpec.from_dict
    else:
        data[head] = copy.deepcopy(value)
