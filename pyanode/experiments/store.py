"""The results store: files written whole or not at all.

A run folder holds `spec.toml` (the resolved RunSpec), `history.jsonl` (one row per epoch) and
`result.json`, written last: its presence marks the run finished.
"""

from __future__ import annotations

import json
import math
import os
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import IO, Any

from pyanode.specs import RunSpec


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
    """JSON has no NaN/inf: store them as null."""
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if isinstance(value, dict):
        return {k: _clean(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_clean(v) for v in value]
    return value


def to_json(value: Any, **kwargs: Any) -> str:
    return json.dumps(_clean(value), allow_nan=False, **kwargs)


def write_run(
    out: str | os.PathLike,
    spec: RunSpec,
    history: list[dict[str, Any]],
    result: dict[str, Any],
) -> Path:
    """Store one finished run under `out`; `result.json` goes last, as the done marker."""
    out = Path(out)
    atomic_write_text(out / "spec.toml", spec.to_toml())
    atomic_write_text(out / "history.jsonl", "".join(to_json(row) + "\n" for row in history))
    atomic_write_text(out / "result.json", to_json(result, indent=2, sort_keys=True))
    return out


def read_history(out: str | os.PathLike) -> list[dict[str, Any]]:
    """The per-epoch rows of a stored run."""
    lines = Path(out, "history.jsonl").read_text(encoding="utf-8").splitlines()
    return [json.loads(line) for line in lines if line.strip()]


def read_result(out: str | os.PathLike) -> dict[str, Any]:
    return json.loads(Path(out, "result.json").read_text(encoding="utf-8"))
