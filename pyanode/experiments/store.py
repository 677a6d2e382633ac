"""The results store: one on-disk format for every trial, every file written whole or not at all.

A **trial folder** holds

    spec.toml          the resolved RunSpec (written first, with trial.json: they claim the folder)
    trial.json         schema_version, trial_id and the description of what is recorded
    history.jsonl      one row per finished epoch (rewritten atomically after each epoch)
    iterations.jsonl   one row per training iteration, when the trial records them
    checkpoint.pt      the trainer's position (see `checkpoint`), after every epoch
    weights.npy        the final parameters: one flat float32 vector in the documented order
    arrays.npz         the arrays the trial keeps (trajectories, feature snapshots, maps)
    result.json        written last: schema_version, trial_id, status and the final metrics

`trial.json` marks a folder as a trial's: a folder without it is not a trial (collect passes it
by). `.lock` is held (an advisory lock, released when the process ends, also by a kill) by the
run that writes the folder, so that a second run into it is refused instead of training the
same trials twice.

The trial id is the first 12 hex digits of the sha256 of the canonical JSON of the spec (and of
the record description, when there is one), so it names the same trial on every machine. Every
read checks it: a folder whose files belong to another trial (a hand-edited spec.toml, a result
copied from elsewhere) is refused, never read as this trial's.

A **batch folder** (a sweep, a reproduction, a study's trained models) holds `trials.json`, the
trials of its last run in order with their keys and labels, and one trial folder per trial named
by its id, beside the command's own files (config.json, summary.json, tables, figures).

Reading needs json and numpy only, so figures are redrawn without torch's training stack.
"""

from __future__ import annotations

import contextlib
import csv
import hashlib
import io
import json
import logging
import math
import os
import re
import socket
import tempfile
import zipfile
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Any

import numpy as np

from pyanode._errors import FolderError, SpecError, StoreError
from pyanode.specs import RunSpec

log = logging.getLogger("pyanode")

SCHEMA_VERSION = 1
SPEC = "spec.toml"
TRIAL = "trial.json"
HISTORY = "history.jsonl"
ITERATIONS = "iterations.jsonl"
CHECKPOINT = "checkpoint.pt"
WEIGHTS = "weights.npy"
ARRAYS = "arrays.npz"
RESULT = "result.json"
MANIFEST = "trials.json"
LOCK = ".lock"
TRIAL_FILES = (SPEC, TRIAL, HISTORY, ITERATIONS, CHECKPOINT, WEIGHTS, ARRAYS, RESULT)
PROGRESS_FILES = (CHECKPOINT, HISTORY, ITERATIONS, WEIGHTS, ARRAYS, RESULT)  # after the claim
# the temporary files of `atomic_write` (and of `check_output`): `.<name>.<8 random>.tmp`
_TEMPORARY = re.compile(r"\..+\.[a-z0-9_]{8}\.tmp")
WRITE_FIX = (
    "free space (or fix the permissions) and run the same command again: finished trials are "
    "kept and unfinished ones resume from their last checkpoint"
)


# -- whole-or-nothing writes ---------------------------------------------------------------------
def atomic_write_text(path: str | os.PathLike, text: str) -> Path:
    """Write `text` (UTF-8) to `path` atomically, as `atomic_write` does."""
    return atomic_write(path, lambda f: f.write(text.encode("utf-8")))


def atomic_write(path: str | os.PathLike, write: Callable[[IO[bytes]], None]) -> Path:
    """Call `write(f)` on an in-memory binary file, then write its bytes to a temporary file
    next to `path`, fsync it, os.replace it onto `path` and fsync the folder: `path` holds the
    old bytes or all the new ones, never a mix. The temporary file is removed on any error or
    interruption; one left by a kill is removed by `clean_temporary` on the next run.

    Arguments:
        path: the file to (re)write; its folder is created if missing.
        write: writes the whole content to the file object, e.g.
            `lambda f: torch.save(obj, f)`.

    Returns:
        `path` as a `Path`.

    Raises:
        StoreError: if the disk refuses the bytes (full, read-only, quota, I/O error), naming
            the file. An error of `write` itself is raised as it is.
    """
    path = Path(path)
    buffer = io.BytesIO()
    write(buffer)  # first, in memory: a failure of the disk is then always an OSError here
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
        try:
            with os.fdopen(fd, "wb") as f:
                os.fchmod(f.fileno(), 0o666 & ~_UMASK)  # mkstemp makes 0600; results are shared
                f.write(buffer.getbuffer())
                f.flush()
                os.fsync(f.fileno())
            os.replace(tmp, path)
        except BaseException:
            Path(tmp).unlink(missing_ok=True)
            raise
        _fsync_dir(path.parent)
    except OSError as err:
        raise StoreError(err.errno, f"{err.strerror}: cannot write {path}; {WRITE_FIX}") from err
    return path


def clean_temporary(folder: str | os.PathLike) -> list[Path]:
    """Remove the temporary files that a kill during `atomic_write` left in `folder` (call it
    while holding the folder's `lock`, so that no write is under way).

    Returns:
        The files removed.
    """
    removed = []
    with contextlib.suppress(FileNotFoundError, NotADirectoryError):
        for path in Path(folder).iterdir():
            if _TEMPORARY.fullmatch(path.name) and path.is_file():
                path.unlink(missing_ok=True)
                removed.append(path)
    if removed:
        log.debug("removed %d temporary file(s) left by a kill in %s", len(removed), folder)
    return removed


def check_output(path: str | os.PathLike, *, file: bool = False) -> Path:
    """Check, before any work, that results can be written at `path`: a folder (created if
    missing) in which a file can be made, or with `file`, a file that is not a folder, in such a
    folder.

    Raises:
        SpecError: naming the path, what is wrong and the fix (an empty path, an existing file
            where a folder is wanted or the reverse, a read-only or full file system, a name
            too long, no permission).
    """
    text = os.fspath(path)
    what = "output file" if file else "output folder"
    if not text.strip():
        raise SpecError(f"the {what} is an empty path: name one, e.g. results/run")
    path = Path(text)
    try:
        if file and path.is_dir():
            raise SpecError(f"{what} {text!r} is a folder: name a file, e.g. "
                            f"{text}/results.csv")  # fmt: skip
        if not file and path.exists() and not path.is_dir():
            raise SpecError(f"{what} {text!r} exists and is not a folder: choose another path")
        folder = path.parent if file else path
        folder.mkdir(parents=True, exist_ok=True)
        if file and path.exists():
            open(path, "ab").close()  # writable, left unchanged
        else:
            probe = path if file else folder / ".probe.writable.tmp"
            os.close(os.open(probe, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600))
            probe.unlink()
    except OSError as err:
        raise SpecError(
            f"{what} {text!r} cannot be written ({err.strerror or err}): choose another path"
        ) from None
    return path


@contextlib.contextmanager
def lock(folder: str | os.PathLike) -> Iterator[None]:
    """Hold the lock of `folder` (created if missing): a second run into the same folder is
    refused while this one runs. The lock is advisory (`flock` on `.lock`) and goes with the
    process, also when it is killed; where the file system has no locks, nothing is locked.

    Raises:
        SpecError: if another process holds it (named by its pid and host).
    """
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    try:
        import fcntl
    except ImportError:  # pragma: no cover - Windows
        yield
        return
    with open(folder / LOCK, "a+", encoding="utf-8") as f:
        try:
            fcntl.flock(f, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            f.seek(0)
            holder = f.read().strip() or "another process"
            raise SpecError(
                f"{str(folder)!r} is in use by another pyanode run ({holder}): wait for it to "
                "finish, or write to another folder"
            ) from None
        except OSError as err:  # pragma: no cover - a file system without locks
            log.debug("cannot lock %s (%s): running unlocked", folder, err)
            yield
            return
        try:
            with contextlib.suppress(OSError):  # who holds it: only for the message above
                f.seek(0)
                f.truncate()
                f.write(f"pid {os.getpid()} on {socket.gethostname()}\n")
                f.flush()
            yield
        finally:
            fcntl.flock(f, fcntl.LOCK_UN)


def _current_umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


_UMASK = _current_umask()


def _fsync_dir(folder: Path) -> None:
    """Make a rename in `folder` durable (POSIX); a no-op where folders cannot be opened."""
    try:
        fd = os.open(folder, os.O_RDONLY)
    except OSError:  # pragma: no cover - Windows
        return
    try:
        os.fsync(fd)
    except OSError:  # pragma: no cover - file systems without directory fsync
        pass
    finally:
        os.close(fd)


def _clean(value: Any) -> Any:
    """JSON has no NaN/inf: store them as null; numpy scalars as Python numbers."""
    if isinstance(value, np.generic):
        value = value.item()
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if isinstance(value, dict):
        return {k: _clean(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_clean(v) for v in value]
    return value


def to_json(value: Any, **kwargs: Any) -> str:
    return json.dumps(_clean(value), allow_nan=False, **kwargs)


def write_json(path: str | os.PathLike, value: Any) -> Path:
    """Write `value` as indented JSON (sorted keys), whole or not at all."""
    return atomic_write_text(path, to_json(value, indent=2, sort_keys=True) + "\n")


def read_json(path: str | os.PathLike) -> Any:
    return json.loads(Path(path).read_text(encoding="utf-8"))


def write_rows(path: str | os.PathLike, rows: Iterable[dict[str, Any]]) -> Path:
    """Write `rows` as JSON lines (history.jsonl, iterations.jsonl), whole or not at all."""
    return atomic_write_text(path, "".join(to_json(row) + "\n" for row in rows))


def read_rows(path: str | os.PathLike) -> list[dict[str, Any]]:
    """The rows of a JSON-lines file.

    Raises:
        FolderError: naming the file, if it cannot be read or a line is not a JSON object.
    """
    with _reading(path):
        lines = Path(path).read_text(encoding="utf-8").splitlines()
        rows = [json.loads(line) for line in lines if line.strip()]
        if not all(isinstance(row, dict) for row in rows):
            raise ValueError("a line is not a JSON object")
    return rows


@contextlib.contextmanager
def _reading(path: str | os.PathLike, fix: str = "delete the trial's folder to run it again"):
    """Turn the failure to read a stored file into a `FolderError` naming it."""
    try:
        yield
    except (OSError, ValueError, EOFError, zipfile.BadZipFile) as err:  # JSON and numpy: ValueError
        raise unreadable(path, err, fix) from None


def unreadable(path: str | os.PathLike, err: BaseException, fix: str) -> FolderError:
    """The error for a stored file that cannot be read: the file, why (never an empty reason:
    an empty file gives errors without text) and the fix."""
    path = Path(path)
    empty = " (the file is empty)" if path.is_file() and path.stat().st_size == 0 else ""
    reason = f"{type(err).__name__}: {err}" if str(err) else type(err).__name__
    return FolderError(f"{path} cannot be read{empty}: {reason}; {fix}")


def read_history(folder: str | os.PathLike) -> list[dict[str, Any]]:
    """The per-epoch rows stored in a trial folder so far (empty before the first epoch)."""
    path = Path(folder, HISTORY)
    return read_rows(path) if path.exists() else []


def save_arrays(path: str | os.PathLike, arrays: dict[str, np.ndarray]) -> Path:
    """Write `arrays` as one compressed .npz file, whole or not at all."""

    def write(f: IO[bytes]) -> None:
        np.savez_compressed(f, **{k: np.asarray(v) for k, v in arrays.items()})

    return atomic_write(path, write)


def save_weights(path: str | os.PathLike, vector: np.ndarray) -> Path:
    """Write the flat float32 parameter vector as .npy, whole or not at all."""
    return atomic_write(path, lambda f: np.save(f, np.asarray(vector, dtype=np.float32)))


# -- trial identity ------------------------------------------------------------------------------
def trial_id(spec: RunSpec, record: dict[str, Any] | None = None) -> str:
    """The trial's name: the first 12 hex digits of the sha256 of the canonical JSON of the
    resolved spec (sorted keys, defaults filled in, the seed included), or of the spec and the
    record description when the trial records more than its history."""
    if record:
        text = to_json({"record": record, "spec": spec.to_dict()}, sort_keys=True)
    else:
        text = spec.to_json()
    return hashlib.sha256(text.encode("utf-8")).hexdigest()[:12]


def read_identity(folder: Path) -> tuple[str, RunSpec, dict[str, Any]] | None:
    """(id, spec, record) of the trial whose trial.json and spec.toml are in `folder`; None for
    a folder that holds no trial (no trial.json, and no result or checkpoint either). Checks
    that the two agree with each other and with the schema version.

    Raises:
        FolderError: naming the file, for a file that cannot be read or does not match.
    """
    spec_file, trial_file = folder / SPEC, folder / TRIAL
    if not trial_file.exists():
        for name in (RESULT, CHECKPOINT):
            if (folder / name).exists():
                raise FolderError(
                    f"{folder / name} has no {TRIAL} beside it: {folder} is not a complete trial "
                    "folder; restore the file, or move the folder away"
                )
        return None
    if not spec_file.is_file():
        raise FolderError(
            f"{spec_file} is missing: {folder} is not a complete trial folder; restore it, or "
            "move the folder away"
        )
    try:
        spec = RunSpec.from_toml(spec_file.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, SpecError) as err:
        raise unreadable(spec_file, err, "restore it, or move the folder away") from None
    meta = _read_json_file(trial_file)
    computed = trial_id(spec, meta.get("record") or None)
    if meta.get("trial_id") != computed:
        raise FolderError(
            f"{spec_file} does not match the trial id {meta.get('trial_id')!r} of {trial_file} "
            f"(it hashes to {computed!r}): the spec was edited after the trial started; "
            "restore it, or delete the folder to run the trial afresh"
        )
    return computed, spec, meta.get("record") or {}


def _read_json_file(path: Path) -> dict[str, Any]:
    """A trial file (trial.json, result.json) of this schema version, as a dict.

    Raises:
        FolderError: naming the file, if it cannot be read or parsed, or is of another version.
    """
    with _reading(path, "delete it (or the folder) to run the trial again"):
        data = read_json(path)
    _check_version(path, data)
    return data


def _check_version(path: Path, data: Any) -> None:
    if not isinstance(data, dict) or data.get("schema_version") != SCHEMA_VERSION:
        found = data.get("schema_version") if isinstance(data, dict) else type(data).__name__
        raise FolderError(
            f"{path} is not a pyanode trial file of schema_version {SCHEMA_VERSION} "
            f"(found {found!r}); it was written by another version or is damaged"
        )


def stored_id(folder: str | os.PathLike) -> str | None:
    """The id of the trial stored in `folder` (from spec.toml and trial.json, checked against
    result.json), or None for a folder that holds no trial.

    Raises:
        FolderError: if the folder's files cannot be read or belong to different trials.
    """
    folder = Path(folder)
    identity = read_identity(folder)
    if identity is None:
        return None
    if (folder / RESULT).exists():
        result = _read_json_file(folder / RESULT)
        if result.get("trial_id") != identity[0]:
            raise FolderError(
                f"{folder / RESULT} belongs to trial {result.get('trial_id')!r}, but the "
                f"folder's spec is trial {identity[0]!r}: the folder mixes two runs; move one "
                "of them away"
            )
    return identity[0]


def claim(
    folder: str | os.PathLike, spec: RunSpec, record: dict[str, Any], *, overwrite: bool = False
) -> str:
    """Make `folder` the trial folder of `spec` (and `record`): write spec.toml, then trial.json
    (the claim), or check that the ones there are this trial's.

    Arguments:
        overwrite: delete the files of another trial (or damaged ones) found there instead of
            refusing.

    Returns:
        The trial id.

    Raises:
        SpecError: if `folder` is a file or a batch folder.
        FolderError: if it holds another trial or a spec.toml that is not this trial's
            (without `overwrite`), or damaged trial files.
        StoreError: if the files cannot be written.
    """
    folder = Path(folder)
    tid = trial_id(spec, record)
    if folder.exists() and not folder.is_dir():
        raise SpecError(f"output {str(folder)!r} exists and is not a folder")
    if (folder / MANIFEST).exists():
        raise SpecError(
            f"{str(folder)!r} holds a batch of trials ({MANIFEST}), not one trial: "
            "choose another folder"
        )
    try:
        found = stored_id(folder)
    except FolderError:
        if not overwrite:
            raise
        found = "damaged"
    text = spec.to_toml()
    if found is None and (folder / SPEC).exists() and not _holds(folder / SPEC, text):
        found = "spec"  # another run's claim cut short, or a user's file
    if found is not None and found != tid:
        if not overwrite:
            other = "a spec.toml of another run" if found == "spec" else f"trial {found}"
            raise FolderError(
                f"{str(folder)!r} holds another run ({other}, not {tid}); use another folder, "
                "or --overwrite (overwrite=True) to replace it"
            )
        for name in TRIAL_FILES:
            (folder / name).unlink(missing_ok=True)
        found = None
    if found is None:
        atomic_write_text(folder / SPEC, text)
        write_json(folder / TRIAL, {"schema_version": SCHEMA_VERSION, "trial_id": tid,
                                    "record": record})  # fmt: skip
    return tid


def _holds(path: Path, text: str) -> bool:
    try:
        return path.read_bytes() == text.encode("utf-8")
    except OSError:
        return False


def reset(folder: str | os.PathLike) -> None:
    """Forget a trial's outcome and progress, keeping its spec.toml and trial.json."""
    for name in PROGRESS_FILES:
        Path(folder, name).unlink(missing_ok=True)


# -- reading -------------------------------------------------------------------------------------
def read_result(folder: str | os.PathLike, expected: str | None = None) -> dict[str, Any] | None:
    """The stored result.json of the trial in `folder`, or None if it has not finished.

    Arguments:
        expected: the trial id the caller is looking for (None: the folder's own).

    Raises:
        FolderError: if the folder's files are damaged, mix two trials, or are not `expected`.
    """
    folder = Path(folder)
    tid = stored_id(folder)
    if expected is not None and tid is not None and tid != expected:
        raise FolderError(f"{str(folder)!r} holds trial {tid}, not {expected}")
    if tid is None or not (folder / RESULT).exists():
        return None
    return _read_json_file(folder / RESULT)


def check_archive(path: Path) -> None:
    """Check without torch that `path` (a checkpoint) is a whole zip archive, as torch writes.

    Raises:
        FolderError: naming the file, if it is empty or not a readable zip archive.
    """
    with _reading(path, f"delete {path.name} to restart the trial from its beginning"):
        with zipfile.ZipFile(path) as archive:
            bad = archive.testzip()
        if bad is not None:
            raise ValueError(f"its part {bad} is damaged")


@dataclass
class StoredTrial:
    """One finished trial as read back from its folder (ids checked).

    Arguments:
        folder: the trial folder.
        trial_id: its id.
        key: what the batch that ran it calls it, e.g. `{"panel": "g1d", "model": "node",
            "seed": 0}` (empty outside a batch).
        spec: its RunSpec.
        result: result.json.
        history: the per-epoch rows.
        iterations: the per-iteration columns (NaN where a row lacks the key); empty if none.
        arrays: arrays.npz; empty if none.
    """

    folder: Path
    trial_id: str
    key: dict[str, Any]
    spec: RunSpec
    result: dict[str, Any]
    history: list[dict[str, Any]]
    iterations: dict[str, np.ndarray]
    arrays: dict[str, np.ndarray]

    def weights(self) -> np.ndarray:
        """The final flat float32 parameters (weights.npy).

        Raises:
            FolderError: if the file cannot be read.
        """
        with _reading(self.folder / WEIGHTS):
            return np.load(self.folder / WEIGHTS)


def read_trial(
    folder: str | os.PathLike, expected: str | None = None, key: dict[str, Any] | None = None
) -> StoredTrial:
    """Read the finished trial stored in `folder`.

    Raises:
        FileNotFoundError: if the folder holds no finished trial (no result.json).
        FolderError: if its files are damaged or are not trial `expected`.
    """
    folder = Path(folder)
    result = read_result(folder, expected)
    if result is None:
        raise FileNotFoundError(f"{folder} holds no finished trial (missing {RESULT})")
    identity = read_identity(folder)
    assert identity is not None  # read_result found the spec
    arrays: dict[str, np.ndarray] = {}
    if (folder / ARRAYS).exists():
        with _reading(folder / ARRAYS), np.load(folder / ARRAYS) as data:
            arrays = {k: data[k] for k in data.files}
    return StoredTrial(
        folder=folder,
        trial_id=identity[0],
        key=dict(key or {}),
        spec=identity[1],
        result=result,
        history=read_history(folder),
        iterations=_columns(folder / ITERATIONS) if (folder / ITERATIONS).exists() else {},
        arrays=arrays,
    )


def _columns(path: Path) -> dict[str, np.ndarray]:
    """Rows of a JSON-lines file as columns; NaN where a row lacks the key."""
    rows = read_rows(path)
    keys = sorted({k for row in rows for k in row})
    nan = float("nan")
    return {
        k: np.array([nan if row.get(k) is None else row[k] for row in rows], dtype=float)
        for k in keys
    }


# -- batch folders -------------------------------------------------------------------------------
def label_of(key: dict[str, Any]) -> str:
    """One short text for a trial's key, e.g. `model.kind="anode" train.seed=2`."""
    return " ".join(f"{k}={json.dumps(v, sort_keys=True)}" for k, v in key.items())


def write_manifest(out: str | os.PathLike, entries: list[tuple[str, dict[str, Any]]]) -> Path:
    """`trials.json`: the (id, key) of each trial of the batch's last run, in its order."""
    trials = [{"id": i, "key": key, "label": label_of(key)} for i, key in entries]
    data = {"schema_version": SCHEMA_VERSION, "trials": trials}  # keys in the batch's order
    return atomic_write_text(Path(out, MANIFEST), to_json(data, indent=1) + "\n")


def read_manifest(out: str | os.PathLike) -> list[dict[str, Any]]:
    """The entries (`id`, `key`, `label`) of a batch folder's trials.json (empty if none).

    Raises:
        FolderError: if trials.json cannot be read, is not of this schema version or not a
            list of trials.
    """
    path = Path(out, MANIFEST)
    if not path.exists():
        return []
    entries = _read_json_file(path).get("trials")
    if not isinstance(entries, list) or not all(
        isinstance(e, dict) and isinstance(e.get("id"), str) and isinstance(e.get("key"), dict)
        for e in entries
    ):
        raise FolderError(f"{path} does not list trials (id, key): it is damaged; delete it, "
                          "the next run writes it again")  # fmt: skip
    return [{"label": label_of(e["key"]), **e} for e in entries]


def read_batch(out: str | os.PathLike, **match: Any) -> list[StoredTrial]:
    """The finished trials of the batch in `out`, in the order of its manifest; `match` keeps
    those whose key has these values (e.g. `panel="g1d"`). A damaged trial folder is left out
    with a warning naming the file: it never hides the others.

    Raises:
        FileNotFoundError: if `out` has no trials.json or none of its trials matches.
        FolderError: if trials.json is damaged.
    """
    entries = read_manifest(out)
    if not entries:
        raise FileNotFoundError(f"no {MANIFEST} in {out}: run the command into it first")
    found = []
    for e in entries:
        if not all(e["key"].get(k) == v for k, v in match.items()):
            continue
        if not Path(out, e["id"], RESULT).exists():
            continue
        try:
            found.append(read_trial(Path(out, e["id"]), e["id"], e["key"]))
        except FolderError as err:
            log.warning("trial %s [%s] is left out: %s", e["id"], e["label"], err)
    if not found:
        what = label_of(match) or "any trial"
        raise FileNotFoundError(f"no finished trial for {what} under {out}; run it first")
    return found


# -- collect: the trials under any folder as one table ---------------------------------------------
# Collect the trials under any results folder into one table (a CSV that plots can read).
#
# `collect(out)` finds every trial folder (one with a trial.json, or a result or checkpoint
# without one) at or below `out`: a single trial (`pyanode train --out`), a batch (a sweep, a
# reproduction, a study's trained models), or a folder of several; other folders, even ones
# holding a spec.toml, are not trials.
# One row per trial: `trial_id`, `label` (what its batch calls it), `status` (`ok`, `failed`,
# `interrupted`: a checkpoint but no result yet, `pending`: not started, `damaged`: its files
# cannot be read or belong to another trial, with the reason in `message`), `folder` (relative to
# `out`), the spec's fields flattened with dots (`dataset`, `dataset_kwargs.dim`, `model.kind`,
# `solver.rtol`, `train.seed`, ...), then the fields of result.json. Within a batch the rows follow
# its manifest (the order of its last run), then its other trial folders by name.
LEADING = ("trial_id", "label", "status", "folder")


def collect(out: str | os.PathLike) -> list[dict[str, Any]]:
    """The rows of every trial folder at or below `out` (see the module docstring).

    Raises:
        FileNotFoundError: if `out` is not a folder.
    """
    out = Path(out)
    if not out.is_dir():
        raise FileNotFoundError(f"no results folder {str(out)!r}")
    rows: list[dict[str, Any]] = []
    for folder, label in _trial_folders(out):
        rows.append(_row(folder, label, folder.relative_to(out).as_posix() or "."))
    return rows


def _trial_folders(root: Path) -> list[tuple[Path, str]]:
    """(trial folder, label) at or below `root`: batches in manifest order, the rest by path."""
    if any((root / name).exists() for name in (TRIAL, RESULT, CHECKPOINT)):
        return [(root, "")]
    found: list[tuple[Path, str]] = []
    listed: set[str] = set()
    try:
        entries = read_manifest(root)
    except SpecError as err:  # the trial folders are still found, by name
        log.warning("%s; its trials are listed by folder name", err)
        entries = []
    for entry in entries:
        if (root / entry["id"]).is_dir():
            found.append((root / entry["id"], entry["label"]))
            listed.add(entry["id"])
    for child in sorted(p for p in root.iterdir() if p.is_dir() and p.name not in listed):
        found += _trial_folders(child)
    return found


def _row(folder: Path, label: str, where: str) -> dict[str, Any]:
    row: dict[str, Any] = {"trial_id": "", "label": label, "status": "damaged", "folder": where}
    try:
        identity = read_identity(folder)
        if identity is None:  # listed by its batch, not started
            row.update(trial_id=folder.name, status="pending")
            return row
        row["trial_id"], spec, _ = identity
        result = read_result(folder)
    except (SpecError, OSError) as err:
        row["message"] = str(err)
        return row
    if result is not None:
        row["status"] = result["status"]
    elif (folder / CHECKPOINT).exists():
        try:
            check_archive(folder / CHECKPOINT)
        except SpecError as err:
            row["message"] = str(err)
            return row
        row["status"], result = "interrupted", {}
    else:
        row["status"], result = "pending", {}
    row.update(_flatten(spec.to_dict()))
    row.update({k: v for k, v in sorted(result.items()) if k not in LEADING})
    return row


def _flatten(data: dict[str, Any], prefix: str = "") -> dict[str, Any]:
    flat: dict[str, Any] = {}
    for key, value in data.items():
        if isinstance(value, dict):
            flat.update(_flatten(value, f"{prefix}{key}."))
        else:
            flat[f"{prefix}{key}"] = value
    return flat


def write_csv(rows: list[dict[str, Any]], path: str | os.PathLike) -> Path:
    """Write `rows` as one CSV (atomically): columns in order of first appearance, empty cells
    for missing values, lists and tables as JSON.

    Returns:
        `path` as a `Path`.
    """
    columns: dict[str, None] = dict.fromkeys(LEADING)
    for row in rows:
        columns.update(dict.fromkeys(row))
    buffer = io.StringIO()
    writer = csv.DictWriter(buffer, fieldnames=list(columns), lineterminator="\n")
    writer.writeheader()
    for row in rows:
        writer.writerow({k: _cell(v) for k, v in row.items()})
    return atomic_write_text(path, buffer.getvalue())


def read_csv(path: str | os.PathLike) -> list[dict[str, str]]:
    """The rows of a collected CSV, as strings (empty string for a missing value)."""
    with open(path, newline="", encoding="utf-8") as f:
        return list(csv.DictReader(f))


def _cell(value: Any) -> Any:
    if value is None:
        return ""
    if isinstance(value, (list, tuple, dict)):
        return json.dumps(value, sort_keys=True)
    return value
