"""Collect the trials under any results folder into one table (a CSV that plots can read).

`collect(out)` finds every trial folder (one with a trial.json, or a result or checkpoint
without one) at or below `out`: a single trial (`pyanode train --out`), a batch (a sweep, a
reproduction, a study's trained models), or a folder of several; other folders, even ones
holding a spec.toml, are not trials.
One row per trial: `trial_id`, `label` (what its batch calls it), `status` (`ok`, `failed`,
`interrupted`: a checkpoint but no result yet, `pending`: not started, `damaged`: its files
cannot be read or belong to another trial, with the reason in `message`), `folder` (relative to
`out`), the spec's fields flattened with dots (`dataset`, `dataset_kwargs.dim`, `model.kind`,
`solver.rtol`, `train.seed`, ...), then the fields of result.json. Within a batch the rows follow
its manifest (the order of its last run), then its other trial folders by name.
"""

from __future__ import annotations

import csv
import io
import json
import logging
import os
from pathlib import Path
from typing import Any

from pyanode._errors import SpecError
from pyanode.experiments import store

log = logging.getLogger("pyanode")

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
    if any((root / name).exists() for name in (store.TRIAL, store.RESULT, store.CHECKPOINT)):
        return [(root, "")]
    found: list[tuple[Path, str]] = []
    listed: set[str] = set()
    try:
        entries = store.read_manifest(root)
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
        identity = store.read_identity(folder)
        if identity is None:  # listed by its batch, not started
            row.update(trial_id=folder.name, status="pending")
            return row
        row["trial_id"], spec, _ = identity
        result = store.read_result(folder)
    except (SpecError, OSError) as err:
        row["message"] = str(err)
        return row
    if result is not None:
        row["status"] = result["status"]
    elif (folder / store.CHECKPOINT).exists():
        try:
            store.check_archive(folder / store.CHECKPOINT)
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
    return store.atomic_write_text(path, buffer.getvalue())


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
