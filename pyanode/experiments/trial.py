"""One trial: a RunSpec trained into its own folder, resumable, with failures recorded as data.

A trial folder holds

- `spec.toml`: the resolved RunSpec;
- `history.jsonl`: one row per finished epoch, rewritten atomically after each epoch;
- `checkpoint.pt`: the trainer's position (weights, optimiser, epoch, batch, RNG states), written
  atomically after every epoch and, with `checkpoint_every=K`, every K batches within an epoch;
- `result.json`: written last and atomically: its presence marks the trial done, finished
  (`"status": "ok"`) or failed (`"status": "failed"`, with what went wrong and where).

Running a trial whose `result.json` exists returns the stored result; running one that has only a
checkpoint resumes from it and ends with the weights an uninterrupted run would have (CPU, same
thread count).
"""

from __future__ import annotations

import hashlib
import threading
from collections.abc import Callable
from pathlib import Path
from typing import Any

import torch

import pyanode
from pyanode._errors import SolverError, SpecError, TrainingDiverged
from pyanode.backends import get_backend
from pyanode.experiments._run import load_split, summarise
from pyanode.experiments.checkpoint import (
    CHECKPOINT,
    load_checkpoint,
    rng_scope,
    save_checkpoint,
    seeded_rng_states,
)
from pyanode.experiments.store import atomic_write_text, read_result, to_json
from pyanode.specs import RunSpec
from pyanode.torch._trainer import Trainer, torch_threads

SPEC = "spec.toml"
HISTORY = "history.jsonl"
RESULT = "result.json"
FAILURE_POLICIES = ("raise", "record")

# A trial changes process-wide state (torch's thread count, the global RNGs): trials that share a
# process (threads of one Dask worker, or calls from several threads) take turns.
_PROCESS_LOCK = threading.Lock()


def trial_id(spec: RunSpec) -> str:
    """The trial's name: the first 12 hex digits of the sha256 of the canonical JSON of the
    resolved spec (sorted keys, defaults filled in, the seed included)."""
    return hashlib.sha256(spec.to_json().encode("utf-8")).hexdigest()[:12]


def finished_result(folder: str | Path) -> dict[str, Any] | None:
    """The stored `result.json` of a trial folder, or None if the trial has not finished."""
    if not Path(folder, RESULT).exists():
        return None
    return read_result(folder)


def reset_trial(folder: str | Path) -> None:
    """Forget a trial's outcome and progress (result, checkpoint, history), keeping its spec."""
    for name in (RESULT, CHECKPOINT, HISTORY):
        Path(folder, name).unlink(missing_ok=True)


def check_options(on_failure: str, checkpoint_every: int | None, threads: int | None) -> None:
    """Raise `SpecError` naming the option if a trial option has an impossible value."""
    if on_failure not in FAILURE_POLICIES:
        raise SpecError(
            f"on_failure={on_failure!r} is not known; accepted: {', '.join(FAILURE_POLICIES)}"
        )
    for name, value in (("checkpoint_every", checkpoint_every), ("threads", threads)):
        if value is not None and (
            isinstance(value, bool) or not isinstance(value, int) or value < 1
        ):
            raise SpecError(f"{name} must be an integer >= 1 or None, got {value!r}")


def run_trial(
    spec: RunSpec,
    folder: str | Path,
    *,
    on_failure: str = "record",
    checkpoint_every: int | None = None,
    threads: int | None = None,
    retry_failed: bool = False,
    on_batch: Callable[[Trainer], None] | None = None,
) -> dict[str, Any]:
    """Train `spec` into `folder`: skip if finished, resume from its checkpoint if interrupted.

    Arguments:
        spec: the run.
        folder: the trial folder (created if missing), usually `<sweep out>/<trial_id(spec)>`.
        on_failure: `record` writes a failed `result.json` and returns it; `raise` writes it and
            re-raises the error. Any exception counts: `SolverError` (reason, t, dt, NFE are
            stored), `TrainingDiverged` (the loss), and anything else (type and message).
        checkpoint_every: also checkpoint every this many batches within an epoch (None: only
            at the end of each epoch).
        threads: torch intra-op threads for the trial (None keeps the process setting); a
            `train.threads` in the spec takes precedence, as in `Trainer.run`.
        retry_failed: run again a trial whose stored result says it failed.
        on_batch: called with the trainer after each batch, after its checkpoint is written.

    Returns:
        The result as stored in `result.json`: `trial_id`, `status` (`ok` | `failed`), `threads`,
        `pyanode_version`, `torch_version`, `resumed_epoch` / `resumed_batch` (the checkpoint
        position it resumed from, or None), and for `ok` the final metrics (last history row,
        `seconds_total`, `n_parameters`, `backend`, `params_sha256` of the flat float32
        weights); for `failed`: `error`, `message`, `reason`, `t`, `dt`, `nfe`, `loss`,
        `failed_epoch`, `failed_batch` (1-based, as the epochs of history.jsonl),
        `epochs_completed`.

    Raises:
        SpecError: on an impossible option, or if `folder` holds the spec of another run.
        Exception: whatever the training raised, with `on_failure="raise"`.
    """
    check_options(on_failure, checkpoint_every, threads)
    folder = Path(folder)
    claim(folder, spec)
    stored = finished_result(folder)
    if stored is not None:
        if not (retry_failed and stored.get("status") == "failed"):
            return stored
        reset_trial(folder)
    with _PROCESS_LOCK, torch_threads(threads):
        base = {
            "trial_id": trial_id(spec),
            "threads": spec.train.threads or torch.get_num_threads(),
            "pyanode_version": pyanode.__version__,
            "torch_version": torch.__version__,
        }
        progress = _Progress(folder, spec, checkpoint_every, on_batch)
        try:
            fitted, backend_name = progress.fit()
        except Exception as err:
            result = {**base, **progress.resumed, **_failure(err, progress)}
            _write_history(folder, progress.history)
            atomic_write_text(folder / RESULT, to_json(result, indent=2, sort_keys=True))
            if on_failure == "raise":
                raise
            return result
    metrics = summarise(fitted.history, fitted)
    weights = fitted.parameters()
    result = {
        **base,
        **progress.resumed,
        "status": "ok",
        **metrics,
        "backend": backend_name,
        "params_sha256": hashlib.sha256(weights.tobytes()).hexdigest(),
    }
    _write_history(folder, fitted.history)
    atomic_write_text(folder / RESULT, to_json(result, indent=2, sort_keys=True))
    return result


def execute_trial(
    spec_json: str, folder: str, checkpoint_every: int | None, threads: int | None
) -> dict[str, Any]:
    """`run_trial` with the record policy, from plain arguments: the task an engine ships to a
    worker (a spec as JSON and a path pickle the same everywhere; no exception crosses)."""
    return run_trial(
        RunSpec.from_json(spec_json),
        folder,
        on_failure="record",
        checkpoint_every=checkpoint_every,
        threads=threads,
    )


def claim(folder: str | Path, spec: RunSpec) -> None:
    """Make `folder` the trial folder of `spec`: write its `spec.toml`, or check the one there.

    Raises:
        SpecError: if `folder` holds the spec of another run.
    """
    folder = Path(folder)
    path = folder / SPEC
    if path.exists():
        stored = RunSpec.from_toml(path.read_text(encoding="utf-8"))
        if stored != spec:
            raise SpecError(
                f"trial folder {str(folder)!r} holds another run (its spec.toml differs from "
                "the spec given); use another folder"
            )
        return
    atomic_write_text(path, spec.to_toml())


def _write_history(folder: Path, history: list[dict[str, Any]]) -> None:
    atomic_write_text(folder / HISTORY, "".join(to_json(row) + "\n" for row in history))


class _Progress:
    """Fits one trial with checkpoint hooks and remembers where it got to."""

    def __init__(
        self,
        folder: Path,
        spec: RunSpec,
        checkpoint_every: int | None,
        on_batch: Callable[[Trainer], None] | None,
    ):
        self.folder, self.spec = folder, spec
        self.checkpoint_every, self.user_on_batch = checkpoint_every, on_batch
        self.epoch, self.batch = 0, 0  # position of the next batch
        self.history: list[dict[str, Any]] = []
        self.resumed: dict[str, int | None] = {"resumed_epoch": None, "resumed_batch": None}

    def fit(self) -> tuple[Any, str]:
        spec, path = self.spec, self.folder / CHECKPOINT
        train_data, test_data = load_split(spec)
        backend = get_backend(spec.backend)
        if backend.name != "torch":  # only the torch backend has checkpoint hooks
            fitted = backend.fit(spec.model, spec.solver, spec.train, train_data, test_data)
            return fitted, backend.name
        state, rng = None, seeded_rng_states(spec.train.seed)
        if path.exists():
            payload = load_checkpoint(path, spec)
            state, rng = payload["trainer"], payload["rng"]
            self.epoch, self.batch = int(state["epoch"]), int(state["batch"])
            self.history = list(state["history"])
            self.resumed = {"resumed_epoch": self.epoch, "resumed_batch": self.batch}
        with rng_scope(rng):
            fitted = backend.fit(
                spec.model,
                spec.solver,
                spec.train,
                train_data,
                test_data,
                state=state,
                on_batch=self._on_batch,
                on_epoch=self._on_epoch,
                progress=False,
            )
        return fitted, backend.name

    def _on_batch(self, trainer: Trainer) -> None:
        self.epoch, self.batch, self.history = trainer.epoch, trainer.batch, trainer.history
        every = self.checkpoint_every
        if every is not None and trainer.batch > 0 and trainer.batch % every == 0:
            save_checkpoint(self.folder / CHECKPOINT, self.spec, trainer.state_dict())
        if self.user_on_batch is not None:
            self.user_on_batch(trainer)

    def _on_epoch(self, trainer: Trainer, row: dict[str, Any]) -> None:
        save_checkpoint(self.folder / CHECKPOINT, self.spec, trainer.state_dict())
        _write_history(self.folder, trainer.history)


def _failure(err: Exception, progress: _Progress) -> dict[str, Any]:
    """The failed result: what went wrong (type, message, solver state) and where."""
    row: dict[str, Any] = {
        "status": "failed",
        "error": type(err).__name__,
        "message": str(err),
        "reason": "exception",
        "t": None,
        "dt": None,
        "nfe": None,
        "loss": None,
        "failed_epoch": progress.epoch + 1,
        "failed_batch": progress.batch + 1,
        "epochs_completed": len(progress.history),
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
    return row
