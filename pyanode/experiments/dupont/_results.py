"""Where the Dupont et al. reproductions store their trials, and how the figures read them back.

Layout under an experiment's output folder `out`:

    out/config.json                       the experiment's settings (its config dataclass)
    out/timing.json                       wall seconds of the last `run` and of each trial
    out/runs/<panel>/<model>/seed-<s>/
        spec.toml, history.jsonl          the RunSpec and one row per epoch (results store)
        iterations.jsonl                  one row per training iteration: iteration, loss,
                                          nfe_forward, nfe_backward (and val_loss where measured)
        arrays.npz                        the experiment's arrays (trajectories, feature
                                          snapshots, prediction maps), when it has any
        result.json                       final metrics; written last, it marks the trial done

Reading needs numpy and json only: figures are redrawn from these files without training.
"""

from __future__ import annotations

import io
import json
import os
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from pyanode.experiments.store import (
    atomic_write,
    atomic_write_text,
    read_history,
    read_result,
    to_json,
)

RUNS = "runs"
CONFIG = "config.json"
TIMING = "timing.json"
ITERATIONS = "iterations.jsonl"
ARRAYS = "arrays.npz"
RESULT = "result.json"


def trial_folder(out: str | os.PathLike, panel: str, model: str, seed: int) -> Path:
    """The folder of one trial: `out/runs/<panel>/<model>/seed-<seed>`."""
    return Path(out, RUNS, panel, model, f"seed-{seed}")


def write_json(path: str | os.PathLike, value: Any) -> Path:
    """Write `value` as indented JSON, whole or not at all."""
    return atomic_write_text(path, to_json(value, indent=2, sort_keys=True) + "\n")


def read_json(path: str | os.PathLike) -> Any:
    return json.loads(Path(path).read_text(encoding="utf-8"))


def save_arrays(path: str | os.PathLike, arrays: dict[str, np.ndarray]) -> Path:
    """Write `arrays` as one compressed .npz file, whole or not at all."""

    def write(f: io.BufferedWriter) -> None:
        np.savez_compressed(f, **{k: np.asarray(v) for k, v in arrays.items()})

    return atomic_write(path, write)


def write_iterations(folder: str | os.PathLike, rows: Sequence[dict[str, Any]]) -> Path:
    return atomic_write_text(Path(folder, ITERATIONS), "".join(to_json(r) + "\n" for r in rows))


def read_iterations(folder: str | os.PathLike) -> dict[str, np.ndarray]:
    """The per-iteration rows of a trial as columns; NaN where a row lacks the key."""
    path = Path(folder, ITERATIONS)
    rows = [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines() if line]
    keys = sorted({k for row in rows for k in row})
    nan = float("nan")
    return {
        k: np.array([nan if row.get(k) is None else row[k] for row in rows], dtype=float)
        for k in keys
    }


@dataclass
class StoredTrial:
    """One finished trial as read back from disk."""

    panel: str
    model: str
    seed: int
    folder: Path
    result: dict[str, Any]
    history: list[dict[str, Any]]
    iterations: dict[str, np.ndarray]
    arrays: dict[str, np.ndarray]


def read_trial(folder: str | os.PathLike) -> StoredTrial:
    """Read the finished trial stored in `folder`.

    Raises:
        FileNotFoundError: if the folder holds no finished trial (no result.json).
    """
    folder = Path(folder)
    if not (folder / RESULT).exists():
        raise FileNotFoundError(f"{folder} holds no finished trial (missing {RESULT})")
    arrays: dict[str, np.ndarray] = {}
    if (folder / ARRAYS).exists():
        with np.load(folder / ARRAYS) as data:
            arrays = {k: data[k] for k in data.files}
    iterations = read_iterations(folder) if (folder / ITERATIONS).exists() else {}
    return StoredTrial(
        panel=folder.parent.parent.name,
        model=folder.parent.name,
        seed=int(folder.name.removeprefix("seed-")),
        folder=folder,
        result=read_result(folder),
        history=read_history(folder),
        iterations=iterations,
        arrays=arrays,
    )


def read_trials(
    out: str | os.PathLike, panel: str | None = None, model: str | None = None
) -> list[StoredTrial]:
    """All finished trials under `out` (optionally of one panel and/or model), sorted by panel,
    model and seed."""
    root = Path(out, RUNS)
    found = []
    for folder in sorted(root.glob("*/*/seed-*")):
        if panel is not None and folder.parent.parent.name != panel:
            continue
        if model is not None and folder.parent.name != model:
            continue
        if (folder / RESULT).exists():
            found.append(read_trial(folder))
    return sorted(found, key=lambda t: (t.panel, t.model, t.seed))


def require_trials(
    out: str | os.PathLike, panel: str | None = None, model: str | None = None
) -> list[StoredTrial]:
    """`read_trials`, raising FileNotFoundError (naming what is missing) if there are none."""
    trials = read_trials(out, panel, model)
    if not trials:
        what = "/".join(p for p in (panel, model) if p) or "any panel"
        raise FileNotFoundError(
            f"no finished trial for {what} under {Path(out, RUNS)}; run the experiment first"
        )
    return trials


def read_config(out: str | os.PathLike) -> dict[str, Any]:
    """The stored settings of the experiment in `out` (empty if none were stored)."""
    path = Path(out, CONFIG)
    return read_json(path) if path.exists() else {}


def stack(trials: Sequence[StoredTrial], key: str) -> np.ndarray:
    """The per-iteration column `key` of each trial as rows of one (seeds, iterations) array,
    cut to the shortest trial."""
    columns = [t.iterations[key] for t in trials if key in t.iterations]
    if not columns:
        return np.zeros((0, 0))
    n = min(len(c) for c in columns)
    return np.stack([c[:n] for c in columns])


def group(
    trials: Sequence[StoredTrial], model_order: Sequence[str] = ()
) -> dict[tuple[str, str], list[StoredTrial]]:
    """Trials grouped by (panel, model), seeds in order; with `model_order` the groups come in
    that order of their models (ValueError for a model it does not list)."""
    out: dict[tuple[str, str], list[StoredTrial]] = {}
    for t in trials:
        out.setdefault((t.panel, t.model), []).append(t)
    if model_order:
        out = dict(sorted(out.items(), key=lambda kv: list(model_order).index(kv[0][1])))
    return out
