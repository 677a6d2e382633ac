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

import hashlib
import json
import math
import os
import tempfile
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Any

import numpy as np

from pyanode._errors import SpecError
from pyanode.specs import RunSpec

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
TRIAL_FILES = (SPEC, TRIAL, HISTORY, ITERATIONS, CHECKPOINT, WEIGHTS, ARRAYS, RESULT)


# -- whole-or-nothing writes ---------------------------------------------------------------------
def atomic_write_text(path: str | os.PathLike, text: str) -> Path:
    """Write `text` (UTF-8) to `path` atomically, as `atomic_write` does."""
    return atomic_write(path, lambda f: f.write(text.encode("utf-8")))


def atomic_write(path: str | os.PathLike, write: Callable[[IO[bytes]], None]) -> Path:
    """Call `write(f)` on a temporary binary file next to `path`, fsync it, os.replace it onto
    `path` and fsync the folder: `path` holds the old bytes or all the new ones, never a mix.

    Arguments:
        path: the file to (re)write; its folder is created if missing.
        write: writes the whole content to the open file, e.g. `lambda f: torch.save(obj, f)`.

    Returns:
        `path` as a `Path`.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as f:
            os.fchmod(f.fileno(), 0o666 & ~_UMASK)  # mkstemp makes 0600; results are shared
            write(f)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    _fsync_dir(path.parent)
    return path


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
    lines = Path(path).read_text(encoding="utf-8").splitlines()
    return [json.loads(line) for line in lines if line.strip()]


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


def _identity(folder: Path) -> tuple[str, RunSpec, dict[str, Any]] | None:
    """(id, spec, record) of the trial whose spec.toml and trial.json are in `folder`, None
    when neither is; checks that they agree with each other and with the schema version.

    Raises:
        SpecError: naming the file, for a file that cannot be read or does not match.
    """
    spec_file, trial_file = folder / SPEC, folder / TRIAL
    if not spec_file.exists() and not trial_file.exists():
        return None
    for path in (spec_file, trial_file):
        if not path.is_file():
            raise SpecError(f"{path} is missing: {folder} is not a complete trial folder")
    try:
        spec = RunSpec.from_toml(spec_file.read_text(encoding="utf-8"))
        meta = read_json(trial_file)
    except (OSError, UnicodeDecodeError, json.JSONDecodeError, SpecError) as err:
        raise SpecError(f"trial folder {str(folder)!r} cannot be read: {err}") from None
    _check_version(trial_file, meta)
    computed = trial_id(spec, meta.get("record") or None)
    if meta.get("trial_id") != computed:
        raise SpecError(
            f"{spec_file} does not match the trial id {meta.get('trial_id')!r} of {trial_file} "
            f"(it hashes to {computed!r}): the spec was edited after the trial started; "
            "restore it, or delete the folder to run the trial afresh"
        )
    return computed, spec, meta.get("record") or {}


def _check_version(path: Path, data: Any) -> None:
    if not isinstance(data, dict) or data.get("schema_version") != SCHEMA_VERSION:
        found = data.get("schema_version") if isinstance(data, dict) else type(data).__name__
        raise SpecError(
            f"{path} is not a pyanode trial file of schema_version {SCHEMA_VERSION} "
            f"(found {found!r}); it was written by another version or is damaged"
        )


def stored_id(folder: str | os.PathLike) -> str | None:
    """The id of the trial stored in `folder` (from spec.toml and trial.json, checked against
    result.json), or None for a folder that holds no trial.

    Raises:
        SpecError: if the folder's files cannot be read or belong to different trials.
    """
    folder = Path(folder)
    identity = _identity(folder)
    result = _read_result_file(folder) if (folder / RESULT).exists() else None
    if identity is None:
        if result is not None:
            raise SpecError(f"{folder / RESULT} has no {SPEC} beside it: the folder is damaged")
        return None
    if result is not None and result.get("trial_id") != identity[0]:
        raise SpecError(
            f"{folder / RESULT} belongs to trial {result.get('trial_id')!r}, but the folder's "
            f"spec is trial {identity[0]!r}: the folder mixes two runs"
        )
    return identity[0]


def claim(
    folder: str | os.PathLike, spec: RunSpec, record: dict[str, Any], *, overwrite: bool = False
) -> str:
    """Make `folder` the trial folder of `spec` (and `record`): write spec.toml and trial.json,
    or check that the ones there are this trial's.

    Arguments:
        overwrite: delete the files of another trial found there instead of refusing.

    Returns:
        The trial id.

    Raises:
        SpecError: if `folder` is a file or a batch folder, or holds another trial (without
            `overwrite`), or its trial files are damaged.
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
    except SpecError:
        if not overwrite:
            raise
        found = "damaged"
    if found is not None and found != tid:
        if not overwrite:
            raise SpecError(
                f"{str(folder)!r} holds another run (trial {found}, not {tid}); "
                "use another folder, or --overwrite (overwrite=True) to replace it"
            )
        for name in TRIAL_FILES:
            (folder / name).unlink(missing_ok=True)
        found = None
    if found is None:
        atomic_write_text(folder / SPEC, spec.to_toml())
        write_json(folder / TRIAL, {"schema_version": SCHEMA_VERSION, "trial_id": tid,
                                    "record": record})  # fmt: skip
    return tid


def reset(folder: str | os.PathLike) -> None:
    """Forget a trial's outcome and progress, keeping its spec.toml and trial.json."""
    for name in (RESULT, CHECKPOINT, HISTORY, ITERATIONS, WEIGHTS, ARRAYS):
        Path(folder, name).unlink(missing_ok=True)


# -- reading -------------------------------------------------------------------------------------
def _read_result_file(folder: Path) -> dict[str, Any]:
    path = folder / RESULT
    try:
        result = read_json(path)
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as err:
        raise SpecError(f"{path} cannot be read: {err}") from None
    _check_version(path, result)
    return result


def read_result(folder: str | os.PathLike, expected: str | None = None) -> dict[str, Any] | None:
    """The stored result.json of the trial in `folder`, or None if it has not finished.

    Arguments:
        expected: the trial id the caller is looking for (None: the folder's own).

    Raises:
        SpecError: if the folder's files are damaged, mix two trials, or are not `expected`.
    """
    folder = Path(folder)
    tid = stored_id(folder)
    if expected is not None and tid is not None and tid != expected:
        raise SpecError(f"{str(folder)!r} holds trial {tid}, not {expected}")
    if not (folder / RESULT).exists():
        return None
    return _read_result_file(folder)


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
        """The final flat float32 parameters (weights.npy)."""
        return np.load(self.folder / WEIGHTS)


def read_trial(
    folder: str | os.PathLike, expected: str | None = None, key: dict[str, Any] | None = None
) -> StoredTrial:
    """Read the finished trial stored in `folder`.

    Raises:
        FileNotFoundError: if the folder holds no finished trial (no result.json).
        SpecError: if its files are damaged or are not trial `expected`.
    """
    folder = Path(folder)
    result = read_result(folder, expected)
    if result is None:
        raise FileNotFoundError(f"{folder} holds no finished trial (missing {RESULT})")
    identity = _identity(folder)
    assert identity is not None  # read_result found the spec
    arrays: dict[str, np.ndarray] = {}
    if (folder / ARRAYS).exists():
        with np.load(folder / ARRAYS) as data:
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
        SpecError: if trials.json cannot be read or is not of this schema version.
    """
    path = Path(out, MANIFEST)
    if not path.exists():
        return []
    try:
        data = read_json(path)
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as err:
        raise SpecError(f"{path} cannot be read: {err}") from None
    _check_version(path, data)
    return list(data["trials"])


def read_batch(out: str | os.PathLike, **match: Any) -> list[StoredTrial]:
    """The finished trials of the batch in `out`, in the order of its manifest; `match` keeps
    those whose key has these values (e.g. `panel="g1d"`).

    Raises:
        FileNotFoundError: if `out` has no trials.json or none of its trials matches.
        SpecError: if a trial folder is damaged.
    """
    entries = read_manifest(out)
    if not entries:
        raise FileNotFoundError(f"no {MANIFEST} in {out}: run the command into it first")
    found = [
        read_trial(Path(out, e["id"]), e["id"], e["key"])
        for e in entries
        if all(e["key"].get(k) == v for k, v in match.items())
        and Path(out, e["id"], RESULT).exists()
    ]
    if not found:
        what = label_of(match) or "any trial"
        raise FileNotFoundError(f"no finished trial for {what} under {out}; run it first")
    return found
