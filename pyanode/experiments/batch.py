"""Batches: many trials into one folder, on an engine, with `[k/N]` progress, elapsed time
and ETA (`run_trials`); every command that trains several trials (`sweep`, `reproduce`, the
studies) hands them here, and each trial runs through the one runner (`runner`).

A batch keeps going when one trial goes wrong: a trial that fails, or whose worker process dies
in each of the engine's attempts, is recorded as failed; a trial whose folder is damaged is
reported and left alone; a failing disk stops the batch without recording anything (the trials
resume from their checkpoints); a user's mistake is refused before anything runs. See
docs/sweeps.md, "Failures".
"""

from __future__ import annotations

import logging
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from pyanode._errors import DataError, FolderError, SpecError
from pyanode.experiments import store
from pyanode.experiments.engines import AbstractEngine, InProcess, WorkerDied
from pyanode.experiments.runner import (
    RunOptions,
    Trial,
    as_trial,
    check_trial,
    effective_threads,
    execute_trial,
    failure_fields,
    load_checkpoint,
    prepare,
    result_base,
)
from pyanode.specs import RunSpec

log = logging.getLogger("pyanode")


class TrialFailed(RuntimeError):
    """A trial of a batch run with `on_failure="raise"` failed (its result is stored)."""

    def __init__(self, trial: str, result: dict[str, Any]):
        self.trial, self.result = trial, result
        super().__init__(f"trial {trial} failed: {result.get('error')}: {result.get('message')}")


@dataclass
class BatchReport:
    """What a batch did: every trial's stored result, which were skipped as already done, which
    could not be used (damaged folders, with the reason)."""

    out: Path
    ids: list[str]
    results: dict[str, dict[str, Any]]
    labels: dict[str, str]
    skipped: list[str]
    damaged: dict[str, str] = field(default_factory=dict)

    @property
    def failed(self) -> list[str]:
        return [i for i in self.ids if self.results.get(i, {}).get("status") == "failed"]

    @property
    def ok(self) -> list[str]:
        return [i for i in self.ids if self.results.get(i, {}).get("status") == "ok"]

    def summary(self) -> str:
        """A few lines: counts, then one line per failed or damaged trial with its reason."""
        damaged = f", {len(self.damaged)} damaged" if self.damaged else ""
        lines = [
            f"{len(self.ids)} trial(s): {len(self.ok)} ok, {len(self.failed)} failed{damaged} "
            f"({len(self.skipped)} already done, skipped); results in {self.out}"
        ]
        for i in self.failed:
            r = self.results[i]
            where = f"epoch {r.get('failed_epoch')}" + (
                f", batch {r['failed_batch']}" if r.get("failed_batch") is not None else ""
            )
            solver = (
                f" t={r['t']:.4g} dt={r['dt']:.3g} nfe={r['nfe']}" if r.get("t") is not None else ""
            )
            lines.append(
                f"  FAILED {i} [{self.labels.get(i, '')}] {r.get('error')} ({r.get('reason')}) "
                f"at {where}:{solver} {_first_line(r.get('message', ''))}"
            )
        for i, message in self.damaged.items():
            lines.append(f"  DAMAGED {i} [{self.labels.get(i, '')}] not run: {message}")
        return "\n".join(lines)


def unique_trials(trials: Sequence[Trial | RunSpec]) -> dict[str, Trial]:
    """The trials by id, each once, in their first order; each checked (`check_trial`) before
    any runs.

    Raises:
        SpecError, DataError: for a trial that cannot run, naming it by its key.
    """
    unique: dict[str, Trial] = {}
    for trial in map(as_trial, trials):
        if trial.id in unique:
            continue
        try:
            check_trial(trial)
        except (SpecError, DataError) as err:
            where = f"trial {store.label_of(trial.key) or trial.id}: " if len(trials) > 1 else ""
            raise type(err)(f"{where}{err}") from None
        unique[trial.id] = trial
    return unique


def trial_status(folder: Path, trial: Trial) -> tuple[str, str]:
    """(status, detail) of `trial` in `folder`, without writing: `ok` or `failed` (stored),
    `interrupted` (a checkpoint, no result), `pending` (not started), or `damaged` (detail:
    why)."""
    try:
        stored = store.read_result(folder, trial.id)
        if stored is None and (folder / store.CHECKPOINT).exists():
            load_checkpoint(folder / store.CHECKPOINT, trial.id, mmap=True)
            return "interrupted", ""
    except FolderError as err:
        return "damaged", str(err)
    return ("pending", "") if stored is None else (stored["status"], "")


def run_trials(
    trials: Sequence[Trial | RunSpec],
    out: str | Path,
    *,
    engine: AbstractEngine | None = None,
    options: RunOptions | None = None,
) -> BatchReport:
    """Run every trial into the batch folder `out`: `<out>/<trial id>/` each, and the manifest
    `trials.json` (their ids and keys, in order).

    Before anything runs, every trial is checked (its data loaded), the engine and the output
    folder too, and `out` is locked against a second run. Finished trials are skipped,
    interrupted ones resume from their checkpoint; a trial that fails, or whose worker process
    dies in each of the engine's attempts, is recorded as failed and the others go on; a trial
    whose folder is damaged is reported and not run. Progress goes to the `pyanode` logger:
    `[k/N]`, the trial, its outcome, the elapsed time and the estimated time left.

    Arguments:
        trials: the trials (duplicates, by id, run once), in the order to run them.
        out: the batch folder.
        engine: where the trials run (default: one after another in this process).
        options: see `RunOptions`; `on_failure="raise"` starts no trial after the first failure
            and raises `TrialFailed` (the running ones finish and are stored).

    Returns:
        A `BatchReport`.

    Raises:
        TrialFailed: with `on_failure="raise"`.
        SpecError, DataError: before anything runs, on an impossible option or trial, an
            unwritable `out`, a folder in use by another run, one that holds a single trial,
            or a checkpoint written with another thread count.
        StoreError: when the disk refuses a write (full, read-only): no trial starts after it,
            the unfinished ones keep their checkpoints (run the batch again once it is fixed).
    """
    engine, options, out = engine or InProcess(), options or RunOptions(), Path(out)
    unique = unique_trials(trials)
    engine.check()
    store.check_output(out)
    if (out / store.TRIAL).exists():
        raise SpecError(f"{str(out)!r} holds a single trial ({store.TRIAL}), not a batch: "
                        "choose another folder")  # fmt: skip
    with store.lock(out):
        store.clean_temporary(out)
        return _run_batch(unique, out, engine, options)


def _run_batch(
    unique: dict[str, Trial], out: Path, engine: AbstractEngine, options: RunOptions
) -> BatchReport:
    ids = list(unique)
    labels = {i: store.label_of(t.key) for i, t in unique.items()}
    store.write_manifest(out, [(i, unique[i].key) for i in ids])
    report = BatchReport(out, ids, {}, labels, [])
    todo = []
    for i in ids:
        threads = effective_threads(unique[i].spec, engine.threads)
        try:
            stored = prepare(out / i, unique[i], options, threads)
        except FolderError as err:
            report.damaged[i] = str(err)
            log.warning("trial %s [%s] is not run: %s", i, labels[i], err)
            continue
        if stored is None:
            todo.append(i)
        else:
            report.results[i] = stored
            report.skipped.append(i)
    clock = _Clock(len(ids), len(ids) - len(todo))
    if report.skipped:
        log.info("[%d/%d] done before, skipped: %s", len(report.skipped), len(ids),
                 ", ".join(labels[i] or i for i in report.skipped))  # fmt: skip
    log.info("%d trial(s) to run on %s", len(todo), engine.describe())
    # an absolute path: remote workers do not share our working directory
    tasks = [(unique[i], str((out / i).resolve()), options, engine.threads) for i in todo]
    stop: BaseException | None = None  # why no more trials start
    with engine.map(execute_trial, tasks) as running:
        for index, outcome in running:
            i = todo[index]
            if isinstance(outcome, WorkerDied):
                outcome = _record_death(out / i, unique[i], engine.threads, outcome)
            if isinstance(outcome, FolderError):
                report.damaged[i] = str(outcome)
                log.warning("%s %s %s: not run: %s", clock.tick(), i, labels[i], outcome)
                continue
            if isinstance(outcome, BaseException):  # the disk, the machine, a bug: no more
                log.error("%s %s: not finished: %s: %s", i, labels[i], type(outcome).__name__,
                          outcome)  # fmt: skip
                stop = stop or outcome
                running.stop()
                continue
            report.results[i] = outcome
            log.info("%s %s %s: %s", clock.tick(), i, labels[i], _brief(outcome))
            if options.on_failure == "raise" and outcome.get("status") == "failed":
                stop = stop or TrialFailed(i, outcome)
                running.stop()
    if stop is not None:
        raise stop
    return report


def _record_death(folder: Path, trial: Trial, threads: int, died: WorkerDied) -> dict:
    """Store (from this process: the worker is gone) the failed result of a trial whose worker
    died in each attempt, at the position of its last stored epoch."""
    try:
        done = len(store.read_history(folder))
    except FolderError:  # a damaged history: where it died is unknown
        done = 0
    result = {
        **result_base(trial.spec, trial.id, threads),
        "backend": trial.spec.backend,
        "resumed_epoch": None,
        "resumed_batch": None,
        **failure_fields(died, done + 1, None, done),
    }
    store.write_json(folder / store.RESULT, result)
    return result


class _Clock:
    """`[k/N]`, elapsed time and ETA of a batch (ETA from the trials run so far)."""

    def __init__(self, total: int, done: int):
        self.total, self.done, self.run = total, done, 0
        self.start = time.perf_counter()

    def tick(self) -> str:
        self.done += 1
        self.run += 1
        elapsed = time.perf_counter() - self.start
        eta = elapsed / self.run * (self.total - self.done)
        return f"[{self.done}/{self.total}] {_clock(elapsed)} elapsed, ETA {_clock(eta)}:"


def _clock(seconds: float) -> str:
    minutes, s = divmod(int(round(seconds)), 60)
    hours, m = divmod(minutes, 60)
    return f"{hours}:{m:02d}:{s:02d}" if hours else f"{m}:{s:02d}"


def _first_line(text: str) -> str:
    return text.splitlines()[0] if text else ""


def _brief(result: dict[str, Any]) -> str:
    if result.get("status") == "failed":
        return f"FAILED {result.get('error')} ({result.get('reason')})"
    keys = ("test_acc", "test_loss", "loss", "nfe_forward")
    return "ok " + " ".join(f"{k}={result[k]:.4g}" for k in keys if result.get(k) is not None)
