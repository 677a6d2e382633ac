"""The one trial runner: every command that trains (`train`, `reproduce`, `sweep`, the studies)
describes its trials and hands them here.

A `Trial` is what to train: a `RunSpec` (data, model, solver, training), the key a batch calls it
by, and a `Record` of what to keep besides the history, the final metrics and the weights
(per-iteration rows, the test metrics every k iterations, feature snapshots of probe points,
arrays computed from the trained model). `run_trial` trains one into its folder (see `store`
for the format): a finished trial is returned, not trained again; an interrupted one resumes
from its checkpoint and ends bit-identical to a run that never stopped (CPU, same thread count);
a failure is recorded as data. `run_trials` runs a batch into one folder on an engine, with
`[k/N]` progress, elapsed time and ETA. `run` is the in-memory face of the same path.

What is not the trial's failure is never recorded as one: a user's mistake (an impossible spec,
option, dataset argument, an unwritable output, a folder in use) is refused before anything runs;
a damaged trial folder is reported and left alone; a failing disk (`StoreError`) leaves the trial
unfinished, to resume from its checkpoint. docs/sweeps.md states the whole failure model.
"""

from __future__ import annotations

import contextlib
import dataclasses
import functools
import hashlib
import json
import logging
import random
import threading
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch

import pyanode
from pyanode._errors import (
    FolderError,
    JuliaUnavailable,
    SolverError,
    SpecError,
    StoreError,
    TrainingDiverged,
)
from pyanode._validate import check_choice, check_int
from pyanode.backends import Fitted, TorchBackend, TorchFitted, check_supported, get_backend
from pyanode.data import Dataset, load_dataset, slice_removed_split, split
from pyanode.experiments import store
from pyanode.experiments.engines import WorkerDied
from pyanode.specs import RunSpec, setting
from pyanode.torch import Trainer, available_device, set_flat_parameters, torch_threads

log = logging.getLogger("pyanode")

FAILURE_POLICIES = ("raise", "record")
TEST_SEED_OFFSET = 1000  # an independent test draw has the training seed + 1000 (Table 1)

# A trial changes process-wide state (torch's thread count, the global RNGs): trials that share a
# process (threads of one Dask worker, or calls from several threads) take turns.
_PROCESS_LOCK = threading.Lock()

ArraysFn = Callable[[Fitted, Dataset, "Dataset | None"], dict[str, np.ndarray]]


# -- what to train -------------------------------------------------------------------------------
@dataclass(frozen=True)
class Record:
    """What a trial keeps besides its per-epoch history, final metrics and weights.

    Arguments:
        iterations: one row per training iteration in iterations.jsonl: `iteration`, `loss`,
            `nfe_forward`, `nfe_backward` (Dupont et al.'s per-iteration curves).
        eval_every: also the test metrics (`test_loss`, `test_acc`) every this many iterations
            and before training (iteration 0); 0: never.
        probe: keep the first `probe` training points as `probe_x`, `probe_y` in arrays.npz.
        snapshot_at: iterations at which the features of the probe points are kept
            (`snapshot_iterations`, `snapshots` (S, probe, state...)); 0 is before training.
        arrays: `arrays(fitted, train_data, test_data) -> {name: array}` computed from the
            trained model, kept in arrays.npz: a module-level function or a
            `functools.partial` of one with plain keyword values (it is named in the trial's
            identity and shipped to worker processes).
    """

    iterations: bool = False
    eval_every: int = 0
    probe: int = 0
    snapshot_at: tuple[int, ...] = ()
    arrays: ArraysFn | None = None

    def __post_init__(self) -> None:
        check_int("record.eval_every", self.eval_every, low=0, error=SpecError)
        check_int("record.probe", self.probe, low=0, error=SpecError)
        its = tuple(check_int("record.snapshot_at", i, low=0, error=SpecError)
                    for i in self.snapshot_at)  # fmt: skip
        object.__setattr__(self, "snapshot_at", tuple(sorted(set(its))))
        if self.snapshot_at and not self.probe:
            raise SpecError("record.snapshot_at needs record.probe > 0 (the points to snapshot)")
        self.describe()  # the arrays function must be nameable

    @property
    def per_iteration(self) -> bool:
        return self.iterations or self.eval_every > 0

    def describe(self) -> dict[str, Any]:
        """Plain values naming what is recorded (empty for the default: nothing extra)."""
        out: dict[str, Any] = {}
        for name in ("iterations", "eval_every", "probe"):
            if getattr(self, name):
                out[name] = getattr(self, name)
        if self.snapshot_at:
            out["snapshot_at"] = list(self.snapshot_at)
        if self.arrays is not None:
            out["arrays"] = _describe_function(self.arrays)
        return out


def _describe_function(fn: Any) -> dict[str, Any]:
    keywords: dict[str, Any] = {}
    if isinstance(fn, functools.partial):
        if fn.args:
            raise SpecError("record.arrays: give a partial's arguments by keyword")
        keywords, fn = dict(fn.keywords), fn.func
    name = f"{getattr(fn, '__module__', '?')}.{getattr(fn, '__qualname__', repr(fn))}"
    if "<" in name:
        raise SpecError(f"record.arrays must be a module-level function, got {name}")
    try:
        json.dumps(keywords, sort_keys=True, allow_nan=False)
    except (TypeError, ValueError):
        raise SpecError(f"record.arrays {name}: keyword values must be plain numbers, strings "
                        f"or lists, got {keywords!r}") from None  # fmt: skip
    return {"function": name, **keywords}


@dataclass(frozen=True)
class Trial:
    """One trial to run: its spec, what a batch calls it (`key`, e.g. `{"model": "node",
    "seed": 0}`) and what it records besides its history."""

    spec: RunSpec
    key: dict[str, Any] = field(default_factory=dict)
    record: Record = field(default_factory=Record)

    @property
    def id(self) -> str:
        return store.trial_id(self.spec, self.record.describe())


@dataclass(frozen=True)
class RunOptions:
    """How trials run (not what they are: these never change a trial's id or results)."""

    on_failure: str = setting(
        "record", "record: store a failed trial and go on; raise: stop at the first failure",
        choices=FAILURE_POLICIES,
    )  # fmt: skip
    checkpoint_every: int | None = setting(
        None, "also checkpoint every K batches (always after each epoch)", type=int,
        shown="each epoch",
    )  # fmt: skip
    retry_failed: bool = setting(False, "run the trials stored as failed again")
    overwrite: bool = setting(False, "replace another run found in the output folder")

    def __post_init__(self) -> None:
        check_choice("on_failure", self.on_failure, FAILURE_POLICIES, error=SpecError)
        if self.checkpoint_every is not None:
            check_int("checkpoint_every", self.checkpoint_every, low=1, error=SpecError)


# -- data ----------------------------------------------------------------------------------------
@functools.lru_cache(maxsize=8)
def _load(name: str, kwargs_json: str) -> Dataset:
    return load_dataset(name, **json.loads(kwargs_json))


def load_data(spec: RunSpec) -> tuple[Dataset, Dataset | None]:
    """The training and test sets of `spec` (see `RunSpec` for the kinds of test set)."""
    data = _load(spec.dataset, json.dumps(spec.dataset_kwargs, sort_keys=True))
    seed = spec.train.seed if spec.split_seed is None else spec.split_seed
    test: Dataset | None = None
    if spec.test_kwargs is not None:
        kwargs = {**spec.dataset_kwargs, **spec.test_kwargs}
        train, test = data, _load(spec.dataset, json.dumps(kwargs, sort_keys=True))
    elif spec.test_slice is not None:
        train, test = slice_removed_split(data, angle_range=spec.test_slice)
    elif spec.test_fraction > 0:
        train, test = split(data, test_fraction=spec.test_fraction, seed=seed)
    else:
        train = data
    if spec.train_size is not None and spec.train_size < len(train):
        keep = np.random.default_rng(seed).permutation(len(train))[: spec.train_size]
        train = train.subset(np.sort(keep))
    return train, test


# -- one trial -----------------------------------------------------------------------------------
def run_trial(
    trial: Trial | RunSpec,
    folder: str | Path,
    *,
    options: RunOptions | None = None,
    threads: int | None = None,
    on_batch: Callable[[Trainer], None] | None = None,
    progress: bool | None = False,
) -> dict[str, Any]:
    """Train `trial` into `folder`: return the stored result if it finished, resume from its
    checkpoint if it was interrupted, start it otherwise.

    Arguments:
        trial: the trial (a bare RunSpec is a trial that records nothing extra).
        folder: its folder (created if missing).
        options: failure policy, checkpoint frequency, retry and overwrite (see `RunOptions`;
            default: record a failure, checkpoint after every epoch).
            Any exception counts as a failure: `SolverError` (reason, t, dt, NFE are stored),
            `TrainingDiverged` (the loss), and anything else (type and message).
        threads: torch intra-op threads for the trial (None keeps the process setting); a
            `train.threads` in the spec takes precedence.
        on_batch: called with the trainer after each batch, after its checkpoint is written.
        progress: show the trainer's progress bar (None: only on a terminal).

    Returns:
        The result as stored in result.json (see docs/sweeps.md for its fields).

    Raises:
        SpecError, DataError: before anything runs, on an impossible option or trial, an
            unwritable `folder`, a folder in use by another run, or a checkpoint written with
            another thread count.
        FolderError: if `folder` holds another run (without `options.overwrite`) or damaged
            trial files.
        StoreError: if the disk refuses a write; nothing is recorded, the trial resumes from
            its last checkpoint when run again.
        Exception: whatever the training raised, with `on_failure="raise"`.
    """
    options = options or RunOptions()
    result, _ = _execute(as_trial(trial), Path(folder), options, threads, on_batch, progress)
    return result


def execute_trial(trial: Trial, folder: str, options: RunOptions, threads: int | None) -> dict:
    """`run_trial` with the record policy: the task an engine ships to a worker (a failure of
    the training comes back as the stored failed result; a damaged folder or a failing disk as
    the exception, which the batch handles)."""
    options = dataclasses.replace(options, on_failure="record")
    return run_trial(trial, folder, options=options, threads=threads)


def as_trial(trial: Trial | RunSpec) -> Trial:
    if isinstance(trial, RunSpec):
        return Trial(trial)
    if not isinstance(trial, Trial):
        raise SpecError(f"a trial must be a Trial or a RunSpec, got {type(trial).__name__}")
    return trial


def _execute(
    trial: Trial,
    folder: Path | None,
    options: RunOptions,
    threads: int | None,
    on_batch: Callable[[Trainer], None] | None,
    progress: bool | None,
) -> tuple[dict[str, Any], Fitted | None]:
    """Run `trial` (into `folder`, or in memory for None); the fitted model comes back when it
    was trained here (None for a stored result)."""
    if threads is not None:
        check_int("threads", threads, low=1, error=SpecError)
    check_trial(trial)
    if trial.spec.backend != "julia":  # here, where it trains: before a folder is claimed
        available_device(trial.spec.train.device)
    if folder is None:
        return _train(trial, None, options, threads, on_batch, progress)
    store.check_output(folder)
    with store.lock(folder):
        stored = prepare(folder, trial, options, effective_threads(trial.spec, threads))
        if stored is not None:
            return stored, None
        return _train(trial, folder, options, threads, on_batch, progress)


def check_trial(trial: Trial) -> None:
    """Check what a trial needs before it starts: a backend that supports its spec, and its
    data (loaded here, and cached for the training: an impossible dataset argument is the
    user's mistake, reported at once, never a trial's failure).

    Raises:
        SpecError: for a gradient method or readout the backend lacks.
        DataError: for an unknown dataset, argument or impossible argument value.
    """
    check_supported(trial.spec)
    load_data(trial.spec)


def effective_threads(spec: RunSpec, threads: int | None) -> int:
    """The torch thread count a trial runs with: the spec's, the caller's, or this process's."""
    return spec.train.threads or threads or torch.get_num_threads()


def prepare(folder: Path, trial: Trial, options: RunOptions, threads: int) -> dict | None:
    """Claim `folder` for `trial` and return its stored result, or None when it must run (not
    started, interrupted, or failed with `options.retry_failed`); an interrupted trial must be
    resumable: its checkpoint readable, and written with the same thread count. Call it while
    no one writes into `folder` (holding its lock, or its batch's): it removes the temporary
    files a kill left there.

    Raises:
        FolderError: if the folder holds another run or damaged files.
        SpecError: if the checkpoint was written with another thread count.
        StoreError: if the claim cannot be written.
    """
    tid = store.claim(folder, trial.spec, trial.record.describe(), overwrite=options.overwrite)
    store.clean_temporary(folder)
    stored = store.read_result(folder, tid)
    if stored is not None and options.retry_failed and stored["status"] == "failed":
        store.reset(folder)
        stored = None
    if stored is None and (folder / store.CHECKPOINT).exists():
        try:
            before = load_checkpoint(folder / store.CHECKPOINT, tid, mmap=True).get("threads")
        except FolderError:
            if not options.overwrite:
                raise
            store.reset(folder)  # a damaged checkpoint: start afresh
            return None
        if before is not None and before != threads:
            raise SpecError(
                f"trial {tid} in {str(folder)!r} was checkpointed with {before} torch thread(s) "
                f"and would resume with {threads}: a resumed trial is bit-identical to an "
                f"uninterrupted one only with the same count; run it with --threads {before} "
                f"(threads={before}), or delete its {store.CHECKPOINT} to restart it"
            )
    return stored


def _train(trial: Trial, folder: Path | None, options: RunOptions, threads: int | None,
           on_batch: Callable[[Trainer], None] | None,
           progress: bool | None) -> tuple[dict[str, Any], Fitted | None]:  # fmt: skip
    """Train `trial` (resuming from its checkpoint in `folder`) and store its result; a failure
    of the training is stored as a failed result, a failure of the disk is not (`StoreError`:
    the trial stays unfinished)."""
    spec, tid = trial.spec, trial.id
    with _PROCESS_LOCK, torch_threads(threads):
        base = result_base(spec, tid, threads)
        work = _Training(trial, tid, folder, options.checkpoint_every, on_batch)
        try:
            fitted = work.fit(progress)
        except (JuliaUnavailable, StoreError, FolderError):
            raise  # the machine or the disk, not the trial: nothing to record
        except Exception as err:
            result = {**base, "backend": work.backend, **work.resumed, **work.failure(err)}
            if folder is not None:
                work.write_progress()
                store.write_json(folder / store.RESULT, result)
            if options.on_failure == "raise":
                raise
            return result, None
    weights = fitted.parameters()
    result = {
        **base,
        "backend": work.backend,
        **work.resumed,
        "status": "ok",
        **summarise(fitted.history, weights),
        **work.summary(fitted.history),
        "params_sha256": hashlib.sha256(weights.tobytes()).hexdigest(),
    }
    if folder is not None:
        work.write_progress()
        store.save_weights(folder / store.WEIGHTS, weights)
        arrays = work.arrays(fitted)
        if arrays:
            store.save_arrays(folder / store.ARRAYS, arrays)
        store.write_json(folder / store.RESULT, result)  # last: the trial is done
    return result, fitted


def result_base(spec: RunSpec, tid: str, threads: int | None) -> dict[str, Any]:
    """The fields every result.json starts with: format, trial, and what it ran with."""
    return {
        "schema_version": store.SCHEMA_VERSION,
        "trial_id": tid,
        "threads": effective_threads(spec, threads),
        "pyanode_version": pyanode.__version__,
        "torch_version": torch.__version__,
    }


def summarise(history: list[dict[str, Any]], weights: np.ndarray) -> dict[str, Any]:
    """Final metrics: the last epoch's row, total training seconds and the parameter count."""
    last = dict(history[-1]) if history else {}
    last["seconds_total"] = sum(row["seconds"] for row in history)
    last["seconds_per_epoch"] = last["seconds_total"] / max(len(history), 1)
    last["n_parameters"] = int(weights.size)
    return last


class _Training:
    """Fits one trial with the checkpoint and record hooks, and remembers where it got to."""

    def __init__(
        self,
        trial: Trial,
        tid: str,
        folder: Path | None,
        checkpoint_every: int | None,
        on_batch: Callable[[Trainer], None] | None,
    ):
        self.trial, self.tid, self.folder = trial, tid, folder
        self.record, self.spec = trial.record, trial.spec
        self.checkpoint_every, self.user_on_batch = checkpoint_every, on_batch
        self.epoch, self.batch = 0, 0  # position of the next batch
        self.history: list[dict[str, Any]] = []
        self.rows: list[dict[str, Any]] = []  # per-iteration rows
        self.snapshots: dict[int, np.ndarray] = {}
        self.resumed: dict[str, int | None] = {"resumed_epoch": None, "resumed_batch": None}
        self.backend: str | None = None
        self.train_data: Dataset | None = None  # loaded by `fit`, where a failure is recorded
        self.test_data: Dataset | None = None

    # -- training --------------------------------------------------------------------------
    def fit(self, progress: bool | None) -> Fitted:
        spec = self.spec
        self.train_data, self.test_data = load_data(spec)
        backend = get_backend(spec.backend)
        self.backend = backend.name
        if not isinstance(backend, TorchBackend):  # only the torch backend has hooks
            if self.record.describe():
                raise SpecError(f"backend {backend.name!r} records history only; a trial that "
                                "records more needs backend = 'torch'")  # fmt: skip
            return backend.fit(spec.model, spec.solver, spec.train, self.train_data,
                               self.test_data)  # fmt: skip
        payload = None
        path = None if self.folder is None else self.folder / store.CHECKPOINT
        if path is not None and path.exists():
            payload = load_checkpoint(path, self.tid)
        rng = seeded_rng_states(spec.train.seed) if payload is None else payload["rng"]
        with rng_scope(rng):
            net = backend.build(spec.model, spec.solver, spec.train, self.train_data)
            trainer = Trainer(net, spec.train, self.train_data, self.test_data)
            if payload is None:
                self._measure(trainer, {"iteration": 0})
            else:
                trainer.load_state_dict(payload["trainer"])
                self._load(payload["record"])
                self.epoch, self.batch = trainer.epoch, trainer.batch
                self.history = list(trainer.history)
                self.resumed = {"resumed_epoch": trainer.epoch, "resumed_batch": trainer.batch}
            trainer.run(on_batch=self._on_batch, on_epoch=self._on_epoch, progress=progress)
        return TorchFitted(trainer)

    def _measure(self, trainer: Trainer, row: dict[str, Any]) -> None:
        """Add the test metrics and feature snapshot due at `row["iteration"]`; keep the row
        if it holds more than the iteration."""
        it = row["iteration"]
        if self.record.eval_every and it % self.record.eval_every == 0:
            row.update(trainer.test_metrics())
        if it in self.record.snapshot_at:
            self.snapshots[it] = _features(trainer.model, self.train_data.x[: self.record.probe])
        if self.record.per_iteration and len(row) > 1:
            self.rows.append(row)

    def _on_batch(self, trainer: Trainer) -> None:
        self.epoch, self.batch, self.history = trainer.epoch, trainer.batch, trainer.history
        self._measure(trainer, {"iteration": trainer.iteration, **trainer.last_step})
        every = self.checkpoint_every
        if every is not None and trainer.batch > 0 and trainer.batch % every == 0:
            self._checkpoint(trainer)
        if self.user_on_batch is not None:
            self.user_on_batch(trainer)

    def _on_epoch(self, trainer: Trainer, row: dict[str, Any]) -> None:
        self._checkpoint(trainer)
        self.write_progress()

    def _checkpoint(self, trainer: Trainer) -> None:
        if self.folder is None:
            return
        state = {
            "rows": list(self.rows),
            "snapshots": {str(i): torch.from_numpy(s) for i, s in self.snapshots.items()},
        }
        save_checkpoint(self.folder / store.CHECKPOINT, self.tid, trainer.state_dict(), state)

    def _load(self, state: dict[str, Any]) -> None:
        self.rows = list(state["rows"])
        self.snapshots = {int(i): s.numpy() for i, s in state["snapshots"].items()}

    # -- what is stored --------------------------------------------------------------------
    def write_progress(self) -> None:
        """Store the history (and the iteration rows) reached so far."""
        if self.folder is None:
            return
        store.write_rows(self.folder / store.HISTORY, self.history)
        if self.record.per_iteration:
            store.write_rows(self.folder / store.ITERATIONS, self.rows)

    def summary(self, history: list[dict[str, Any]]) -> dict[str, Any]:
        """What the result adds to the final metrics: data sizes, iterations, last-iteration
        loss and NFE."""
        n_batches = -(-len(self.train_data) // self.spec.train.batch_size)
        out: dict[str, Any] = {
            "n_train": len(self.train_data),
            "n_test": 0 if self.test_data is None else len(self.test_data),
            "iterations": len(history) * n_batches,
        }
        trained = [r for r in self.rows if "loss" in r]
        if trained:
            out.update(loss_last=trained[-1]["loss"], nfe_forward_last=trained[-1]["nfe_forward"])
        return out

    def arrays(self, fitted: Fitted) -> dict[str, np.ndarray]:
        out: dict[str, np.ndarray] = {}
        if self.record.probe:
            out["probe_x"] = self.train_data.x[: self.record.probe]
            out["probe_y"] = self.train_data.y[: self.record.probe]
        if self.snapshots:
            its = sorted(self.snapshots)
            out["snapshot_iterations"] = np.array(its)
            out["snapshots"] = np.stack([self.snapshots[i] for i in its])
        if self.record.arrays is not None:
            out.update(self.record.arrays(fitted, self.train_data, self.test_data))
        return out

    def failure(self, err: Exception) -> dict[str, Any]:
        """The failed result: what went wrong (type, message, solver state) and where."""
        return failure_fields(err, self.epoch + 1, self.batch + 1, len(self.history))


def failure_fields(
    err: Exception, epoch: int | None, batch: int | None, epochs_completed: int
) -> dict[str, Any]:
    """The fields of a failed result: what went wrong (`error`, `message`, `reason`; the solver
    state `t`, `dt`, `nfe`; the `loss`; the `signal` and `attempts` of a worker that died) and
    where (`failed_epoch`, `failed_batch`: 1-based, None where unknown)."""
    row: dict[str, Any] = {
        "status": "failed",
        "error": type(err).__name__,
        "message": str(err),
        "reason": "exception",
        "t": None,
        "dt": None,
        "nfe": None,
        "loss": None,
        "failed_epoch": epoch,
        "failed_batch": batch,
        "epochs_completed": epochs_completed,
    }
    if isinstance(err, SolverError):
        row.update(reason=err.reason, t=float(err.t), dt=float(err.dt), nfe=int(err.nfe))
    elif isinstance(err, TrainingDiverged):
        row.update(
            reason="nonfinite_loss",
            loss=float(err.loss),
            failed_epoch=err.epoch + 1,
            failed_batch=err.batch + 1,
        )
    elif isinstance(err, WorkerDied):
        row.update(reason="worker_died", signal=err.signal, attempts=err.attempts)
    return row


@torch.no_grad()
def _features(model: torch.nn.Module, x: np.ndarray) -> np.ndarray:
    """The features (final ODE state, or ResNet hidden state) of `model` at the points `x`."""
    model.eval()
    like = next(model.parameters())  # the model's device and dtype (train.device, train.dtype)
    return model.features(torch.as_tensor(x, device=like.device, dtype=like.dtype)).cpu().numpy()


# -- in memory, and stored models ----------------------------------------------------------------
@dataclass
class RunResult:
    """A finished trial: its spec, the fitted model, the data it saw and the final metrics."""

    spec: RunSpec
    fitted: Fitted
    train_data: Dataset
    test_data: Dataset | None
    metrics: dict[str, Any]


def run(
    spec: RunSpec | Trial,
    out: str | Path | None = None,
    *,
    options: RunOptions | None = None,
    threads: int | None = None,
    progress: bool | None = None,
) -> RunResult:
    """Train the model of `spec` on its data and return it; with `out`, through its trial
    folder there (a finished trial is loaded from its weights, an interrupted one resumes).

    Arguments:
        options: as in `run_trial`, but by default a failure raises (and is stored).
        threads, progress: as in `run_trial`; the progress bar shows on a terminal by default.

    Raises:
        SpecError: as `run_trial`.
        SolverError, TrainingDiverged: if the training fails (`options.on_failure="raise"`).
        RuntimeError: for a trial stored as failed (run it again with `retry_failed`).
    """
    trial = as_trial(spec)
    folder = None if out is None else Path(out)
    options = options or RunOptions(on_failure="raise")
    result, fitted = _execute(trial, folder, options, threads, None, progress)
    if result["status"] != "ok":
        raise RuntimeError(f"trial {result['trial_id']} failed: {result['error']}: "
                           f"{result['message']}")  # fmt: skip
    if fitted is None:  # finished before: the stored model
        fitted = load_fitted(folder)  # type: ignore[arg-type]
    train_data, test_data = load_data(trial.spec)
    return RunResult(trial.spec, fitted, train_data, test_data, result)


def load_fitted(folder: str | Path) -> TorchFitted:
    """The trained model of the finished trial in `folder`, rebuilt from its spec and final
    weights (no training), with its history.

    Raises:
        FileNotFoundError: if the folder holds no finished trial.
        SpecError: if the trial failed, is not a torch trial, or its files are damaged.
    """
    stored = store.read_trial(folder)
    spec = stored.spec
    if stored.result["status"] != "ok":
        raise SpecError(f"trial in {str(folder)!r} failed ({stored.result['error']}); "
                        "there is no trained model to load")  # fmt: skip
    if spec.backend != "torch":
        raise SpecError(f"trial in {str(folder)!r} ran on backend {spec.backend!r}; only torch "
                        "trials are loaded as models here")  # fmt: skip
    weights = stored.weights()
    if hashlib.sha256(weights.tobytes()).hexdigest() != stored.result["params_sha256"]:
        raise SpecError(f"{Path(folder, store.WEIGHTS)} does not match params_sha256 of "
                        f"{store.RESULT}: the weights file is damaged")  # fmt: skip
    train_data, test_data = load_data(spec)
    net = TorchBackend().build(spec.model, spec.solver, spec.train, train_data)
    set_flat_parameters(net, weights)
    trainer = Trainer(net, spec.train, train_data, test_data)
    trainer.history = stored.history
    trainer.epoch = len(stored.history)
    return TorchFitted(trainer)


# -- checkpoints ---------------------------------------------------------------------------------
# checkpoint.pt: the trainer's position, weights, optimiser and RNG states, written atomically (a
# run killed at any instant leaves the previous checkpoint or the new one) and read back with
# `torch.load(..., weights_only=True)`: only tensors and plain containers, never arbitrary pickles.
# Why RNG states: pyanode's own components draw no random numbers after initialisation (shuffling
# is a pure function of (seed, epoch), weights are initialised under a forked generator). A model
# registered by a user may (dropout, noise injection); it then draws from the global generators of
# torch, numpy and `random`. A trial therefore runs inside `rng_scope`, seeded from the trial's
# seed (so the result does not depend on which worker ran which trials before), and its
# checkpoints hold those generators' states, so that a resumed run draws the same numbers as one
# that never stopped. (Here, not in `store`: it needs torch, which reading results never does.)

CHECKPOINT_FORMAT = 2  # the version of checkpoint.pt's layout


def capture_rng_states() -> dict[str, Any]:
    """The states of torch's CPU (and initialised CUDA) generators, numpy's legacy global one and
    Python's `random`, as tensors and plain values (loadable with `weights_only=True`)."""
    name, keys, pos, has_gauss, cached = np.random.get_state()
    version, internal, gauss_next = random.getstate()
    states: dict[str, Any] = {
        "torch": torch.get_rng_state(),
        "numpy": {
            "name": name,
            "keys": torch.from_numpy(keys.astype(np.int64)),
            "pos": int(pos),
            "has_gauss": int(has_gauss),
            "cached_gaussian": float(cached),
        },
        "python": {"version": version, "internal": list(internal), "gauss_next": gauss_next},
    }
    if torch.cuda.is_available() and torch.cuda.is_initialized():
        states["cuda"] = torch.cuda.get_rng_state_all()
    return states


def restore_rng_states(states: dict[str, Any]) -> None:
    """Set the global generators to `states` (from `capture_rng_states`)."""
    torch.set_rng_state(states["torch"])
    n = states["numpy"]
    keys = n["keys"].numpy().astype(np.uint32)
    np.random.set_state((n["name"], keys, n["pos"], n["has_gauss"], n["cached_gaussian"]))
    p = states["python"]
    random.setstate((p["version"], tuple(p["internal"]), p["gauss_next"]))
    if "cuda" in states and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(states["cuda"])


def seeded_rng_states(seed: int) -> dict[str, Any]:
    """The generator states after seeding torch, numpy and `random` with `seed`, computed without
    changing the caller's generators."""
    with rng_scope(None):
        torch.manual_seed(seed)
        np.random.seed(seed)
        random.seed(seed)
        return capture_rng_states()


@contextlib.contextmanager
def rng_scope(states: dict[str, Any] | None) -> Iterator[None]:
    """Run with the global generators set to `states` (unchanged for None), and give the caller
    its own generator states back afterwards."""
    saved = capture_rng_states()
    if states is not None:
        restore_rng_states(states)
    try:
        yield
    finally:
        restore_rng_states(saved)


def save_checkpoint(
    path: str | Path,
    trial: str,
    trainer_state: dict[str, Any],
    record_state: dict[str, Any] | None = None,
) -> Path:
    """Write a checkpoint of trial `trial` atomically to `path`.

    Arguments:
        path: the file, usually `<trial folder>/checkpoint.pt`.
        trial: the id of the trial it belongs to (checked on load).
        trainer_state: `Trainer.state_dict()`: weights, optimiser, epoch, batch, history and the
            partial sums of the running epoch. The global RNG states and torch's thread count
            (a resumed run is bit-identical only with the same count) are captured here.
        record_state: what the trial's recorder kept so far (iteration rows, snapshots).

    Returns:
        `path` as a `Path`.

    Raises:
        StoreError: if the disk refuses it (the previous checkpoint is kept).
    """
    payload = {
        "format": CHECKPOINT_FORMAT,
        "trial_id": trial,
        "threads": torch.get_num_threads(),
        "trainer": trainer_state,
        "record": record_state or {},
        "rng": capture_rng_states(),
    }
    return store.atomic_write(path, lambda f: torch.save(payload, f))


def load_checkpoint(
    path: str | Path, trial: str | None = None, *, mmap: bool = False
) -> dict[str, Any]:
    """Read a checkpoint with `torch.load(weights_only=True)` onto the CPU.

    Arguments:
        path: the checkpoint file.
        trial: if given, the checkpoint must belong to the trial of this id.
        mmap: map the tensors from the file instead of reading them (to check a checkpoint
            without the cost of loading it).

    Returns:
        A dict with `format`, `trial_id`, `threads` (torch's thread count when it was written;
        absent in older checkpoints), `trainer` (for `Trainer.load_state_dict`), `record` (the
        recorder's state) and `rng` (for `restore_rng_states`).

    Raises:
        FolderError: if the file cannot be read, is not a pyanode checkpoint of a known format,
            or belongs to another trial than `trial`; the message names the file and the fix.
    """
    path = Path(path)
    fix = f"delete {path.name} to restart the trial from its beginning"
    try:
        payload = torch.load(path, map_location="cpu", weights_only=True, mmap=mmap)
    except Exception as err:  # torch raises UnpicklingError, RuntimeError, EOFError, ...
        if mmap:  # the plain load says what is wrong (or reads what mmap cannot)
            return load_checkpoint(path, trial)
        raise store.unreadable(path, err, fix) from None
    if not isinstance(payload, dict) or payload.get("format") != CHECKPOINT_FORMAT:
        found = payload.get("format") if isinstance(payload, dict) else type(payload).__name__
        raise FolderError(
            f"checkpoint {str(path)!r} is not a pyanode checkpoint of format {CHECKPOINT_FORMAT}, "
            f"got format {found!r}; {fix}"
        )
    if trial is not None and payload["trial_id"] != trial:
        raise FolderError(
            f"checkpoint {str(path)!r} belongs to another run (trial {payload['trial_id']}, not "
            f"{trial}); delete it to start this run afresh"
        )
    return payload
