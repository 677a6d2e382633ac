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
keys raise. Each trial is stored under `<out>/<trial_id>/` (see `pyanode.experiments.trial`).
"""

from __future__ import annotations

import copy
import itertools
import json
import logging
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
from pyanode._registry import check_registered
from pyanode.backends import check_torch_gradient
from pyanode.data import DATASETS
from pyanode.experiments.engines import AbstractEngine, LocalPool
from pyanode.experiments.store import atomic_write_text, to_json
from pyanode.experiments.trial import (
    check_options,
    claim,
    execute_trial,
    finished_result,
    reset_trial,
    trial_id,
)
from pyanode.specs import ModelSpec, RunSpec, SolverSpec, TrainSpec

log = logging.getLogger("pyanode")

MANIFEST = "sweep.json"
SECTIONS = {"model": ModelSpec, "solver": SolverSpec, "train": TrainSpec}
TOP_FIELDS = ("dataset", "dataset_kwargs", "test_fraction", "backend")


class TrialFailed(RuntimeError):
    """A trial of a sweep run with `on_failure="raise"` failed (its result is stored)."""

    def __init__(self, trial: str, result: dict[str, Any]):
        self.trial, self.result = trial, result
        super().__init__(f"trial {trial} failed: {result.get('error')}: {result.get('message')}")


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
        return [_label(point) for point in self.points()]

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
                where = f"[grid] point {_label(point)}" if point else "[base]"
                raise type(err)(f"{where}: {err}") from None
            specs.append(spec)
        return specs


def load_sweep(path: str | Path) -> Sweep:
    """Read a sweep config file (TOML); errors name the file."""
    path = Path(path)
    return Sweep.from_toml(path.read_text(encoding="utf-8"), source=str(path))


def check_runnable(spec: RunSpec) -> None:
    """Check what a RunSpec cannot check alone: the dataset name and its keyword arguments, and
    the gradient method against the torch backend's.

    Raises:
        DataError: for an unknown dataset or dataset argument.
        SpecError: for a gradient method the torch backend lacks.
    """
    check_registered(DATASETS, "dataset", spec.dataset, spec.dataset_kwargs, DataError)
    if spec.backend == "torch":
        check_torch_gradient(spec.solver)


@dataclass
class SweepReport:
    """What a sweep did: every trial's stored result, which were skipped as already done."""

    out: Path
    ids: list[str]
    results: dict[str, dict[str, Any]]
    labels: dict[str, str]
    skipped: list[str]

    @property
    def failed(self) -> list[str]:
        return [i for i in self.ids if self.results.get(i, {}).get("status") == "failed"]

    @property
    def ok(self) -> list[str]:
        return [i for i in self.ids if self.results.get(i, {}).get("status") == "ok"]

    def summary(self) -> str:
        """A few lines: counts, then one line per failed trial with its reason."""
        lines = [
            f"{len(self.ids)} trial(s): {len(self.ok)} ok, {len(self.failed)} failed "
            f"({len(self.skipped)} already done, skipped); results in {self.out}"
        ]
        for i in self.failed:
            r = self.results[i]
            where = f"epoch {r.get('failed_epoch')}, batch {r.get('failed_batch')}"
            solver = (
                f" t={r['t']:.4g} dt={r['dt']:.3g} nfe={r['nfe']}" if r.get("t") is not None else ""
            )
            lines.append(
                f"  FAILED {i} [{self.labels.get(i, '')}] {r.get('error')} ({r.get('reason')}) "
                f"at {where}:{solver} {_first_line(r.get('message', ''))}"
            )
        return "\n".join(lines)


def run_sweep(
    sweep: Sweep | Sequence[RunSpec],
    out: str | Path,
    *,
    engine: AbstractEngine | None = None,
    on_failure: str = "record",
    checkpoint_every: int | None = None,
    retry_failed: bool = False,
) -> SweepReport:
    """Run every trial of `sweep` (or the given specs, in that order) into `out`.

    Finished trials (a `result.json` in their folder) are skipped, interrupted ones resume from
    their checkpoint; a trial that fails is recorded as failed and the others go on.

    Arguments:
        sweep: a `Sweep`, or RunSpecs (duplicates, by trial id, run once).
        out: the results folder: `<out>/<trial_id>/` per trial and the manifest `sweep.json`.
        engine: where the trials run (default: `LocalPool()`).
        on_failure: `record` (go on, report the failures) or `raise` (stop submitting trials at
            the first failure and raise `TrialFailed`; the running ones finish and are stored).
        checkpoint_every: checkpoint every this many batches too (None: every epoch only).
        retry_failed: run again the trials whose stored result says they failed.

    Returns:
        A `SweepReport` (`summary()` for a text summary, `failed` for the failed ids).

    Raises:
        TrialFailed: with `on_failure="raise"`.
        SpecError: on an impossible option.
    """
    engine = engine or LocalPool()
    check_options(on_failure, checkpoint_every, engine.threads)
    if isinstance(sweep, Sweep):
        specs, labels = sweep.trials(), sweep.labels()
    else:
        specs = list(sweep)
        for spec in specs:
            check_runnable(spec)
        labels = [""] * len(specs)
    out = Path(out)
    ids, label_of, unique = [], {}, {}
    for spec, label in zip(specs, labels, strict=True):
        i = trial_id(spec)
        if i not in unique:
            ids.append(i)
            unique[i], label_of[i] = spec, label
    _write_manifest(out, ids, label_of)

    results, skipped, tasks, todo = {}, [], [], []
    for i in ids:
        stored = finished_result(out / i)
        if stored is not None and retry_failed and stored.get("status") == "failed":
            reset_trial(out / i)
            stored = None
        if stored is not None:
            results[i] = stored
            skipped.append(i)
        else:
            claim(out / i, unique[i])  # pending trials show in `collect` from now on
            todo.append(i)
            # an absolute path: remote workers do not share our working directory
            folder = str((out / i).resolve())
            tasks.append((unique[i].to_json(), folder, checkpoint_every, engine.threads))
    log.info(
        "sweep: %d trial(s), %d to run on %s, %d already done",
        len(ids),
        len(todo),
        engine.describe(),
        len(skipped),
    )
    iterator = engine.imap_unordered(execute_trial, tasks)
    try:
        for done, (index, result) in enumerate(iterator, start=1):
            i = todo[index]
            results[i] = result
            log.info("[%d/%d] %s %s %s", done, len(todo), i, label_of[i], _brief(result))
            if on_failure == "raise" and result.get("status") == "failed":
                raise TrialFailed(i, result)
    finally:
        iterator.close()
    return SweepReport(out, ids, results, label_of, skipped)


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


def _write_manifest(out: Path, ids: list[str], labels: dict[str, str]) -> None:
    """`sweep.json`: the trial ids in grid order with their grid labels (collect's row order)."""
    path = out / MANIFEST
    known: dict[str, str] = {}
    if path.exists():
        known = {t["id"]: t["label"] for t in json.loads(path.read_text())["trials"]}
    merged = {**known, **{i: labels[i] for i in ids}}
    trials = [{"id": i, "label": label} for i, label in merged.items()]
    atomic_write_text(path, to_json({"trials": trials}, indent=1))


def _label(point: dict[str, Any]) -> str:
    return " ".join(f"{k}={json.dumps(v, sort_keys=True)}" for k, v in point.items())


def _first_line(text: str) -> str:
    return text.splitlines()[0] if text else ""


def _brief(result: dict[str, Any]) -> str:
    if result.get("status") == "failed":
        return f"FAILED {result.get('error')} ({result.get('reason')})"
    keys = ("test_acc", "test_loss", "loss", "nfe_forward")
    return "ok " + " ".join(f"{k}={result[k]:.4g}" for k in keys if result.get(k) is not None)
