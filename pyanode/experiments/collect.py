"""Collect a sweep's trial folders into one table (a CSV that the plots read).

One row per trial folder (a folder holding `spec.toml`): `trial_id`, `label` (the grid point),
`status` (`ok`, `failed`, `interrupted`: a checkpoint but no result yet, or `pending`), the spec's
fields flattened with dots (`dataset`, `dataset_kwargs.dim`, `model.kind`, `solver.rtol`,
`train.seed`, ...), then the fields of `result.json` (final metrics for finished trials; `error`,
`reason`, `t`, `dt`, `nfe`, ... for failed ones). Rows follow the sweep's grid order (its
`sweep.json`), then the other folders by name.
"""

from __future__ import annotations

import csv
import io
import json
import os
from pathlib import Path
from typing import Any

from pyanode.experiments.checkpoint import CHECKPOINT
from pyanode.experiments.store import atomic_write_text
from pyanode.experiments.sweep import MANIFEST
from pyanode.experiments.trial import SPEC, finished_result
from pyanode.specs import RunSpec

LEADING = ("trial_id", "label", "status")


def collect(out: str | os.PathLike) -> list[dict[str, Any]]:
    """The rows of every trial folder under `out` (see the module docstring).

    Raises:
        FileNotFoundError: if `out` is not a folder.
    """
    out = Path(out)
    if not out.is_dir():
        raise FileNotFoundError(f"no results folder {str(out)!r}")
    labels: dict[str, str] = {}
    if (out / MANIFEST).exists():
        manifest = json.loads((out / MANIFEST).read_text(encoding="utf-8"))
        labels = {t["id"]: t["label"] for t in manifest["trials"]}
    folders = {p.parent.name: p.parent for p in out.glob(f"*/{SPEC}")}
    names = [i for i in labels if i in folders] + sorted(set(folders) - set(labels))
    return [_row(folders[name], labels.get(name, "")) for name in names]


def _row(folder: Path, label: str) -> dict[str, Any]:
    spec = RunSpec.from_toml((folder / SPEC).read_text(encoding="utf-8"))
    result = finished_result(folder)
    if result is not None:
        status = result.get("status", "ok")
    else:
        status = "interrupted" if (folder / CHECKPOINT).exists() else "pending"
        result = {}
    row: dict[str, Any] = {"trial_id": folder.name, "label": label, "status": status}
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
