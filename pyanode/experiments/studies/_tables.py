"""Writing a study's results: a CSV table, study.json, and which backends the rows come from."""

from __future__ import annotations

import csv
import io
import math
import os
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import Any

from pyanode.experiments.store import atomic_write_text, to_json


@dataclass(frozen=True)
class StudyResult:
    """What a study returns.

    Arguments:
        name: the study (`forward`, `gradient`, `cross-solver`, `batch-coupling`).
        rows: the table, one dict per row, with the columns of the study's `COLUMNS`.
        meta: plain values: the problem, the config, the reference checks, the backends.
        files: the files written (empty when no `out` was given).
    """

    name: str
    rows: list[dict[str, Any]]
    meta: dict[str, Any]
    files: list[Path] = field(default_factory=list)


def csv_text(rows: Sequence[dict[str, Any]], columns: Sequence[str]) -> str:
    """The rows as CSV with the header `columns`; NaN and None are written as empty cells,
    floats with 17 significant digits (they read back exactly)."""
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerow(columns)
    for row in rows:
        writer.writerow([_cell(row.get(c)) for c in columns])
    return buffer.getvalue()


def _cell(value: Any) -> str:
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return ""
    if isinstance(value, float):
        return repr(value)
    return str(value)


def write_study(
    out: str | os.PathLike,
    result: StudyResult,
    columns: Sequence[str],
    extra_tables: dict[str, tuple[list[dict[str, Any]], Sequence[str]]] | None = None,
) -> list[Path]:
    """Write `<name>.csv` (and the extra tables) and `study.json` under `out`, each atomically.

    Returns:
        The files written.
    """
    out = Path(out)
    stem = result.name.replace("-", "_")
    files = [atomic_write_text(out / f"{stem}.csv", csv_text(result.rows, columns))]
    for name, (rows, cols) in (extra_tables or {}).items():
        files.append(atomic_write_text(out / f"{name}.csv", csv_text(rows, cols)))
    files.append(
        atomic_write_text(out / "study.json", to_json(result.meta, indent=2, sort_keys=True))
    )
    return files


def study_meta(
    study: str, problem: Any, config: Any, reference: Any, rows: list[dict[str, Any]], julia: str
) -> dict[str, Any]:
    """The entries of study.json that every study of one problem shares: the study's name, the
    problem, the config, the reference checks, the backends of `rows` and the Julia note."""
    return {
        "study": study,
        "problem": problem.describe(),
        "config": asdict(config),
        "reference": reference.checks(),
        "backends": sorted({r["backend"] for r in rows}),
        "julia": julia,
    }


def save_study(
    out: str | os.PathLike | None,
    result: StudyResult,
    columns: Sequence[str],
    *,
    figures: bool = True,
    extra_tables: dict[str, tuple[list[dict[str, Any]], Sequence[str]]] | None = None,
) -> StudyResult:
    """Write `result` under `out` (see `write_study`) and, with `figures`, its figure
    `<name>.{png,pdf}` drawn from the table; nothing is written when `out` is None.

    Returns:
        `result` with the files written.
    """
    if out is None:
        return result
    files = write_study(out, result, columns, extra_tables)
    if figures:
        # imported here: matplotlib is loaded only when a figure is drawn
        from pyanode.plots import studies as plots

        plot = {
            "forward": plots.plot_forward,
            "gradient": plots.plot_gradient,
            "batch-coupling": plots.plot_batch_coupling,
            "cross-solver": plots.plot_cross_solver,
        }[result.name]
        stem = Path(out) / result.name.replace("-", "_")
        files += plot(stem.with_name(stem.name + ".csv"), stem)
    return replace(result, files=files)


def text_table(rows: list[dict[str, Any]], columns: tuple[str, ...]) -> str:
    """The rows as an aligned plain-text table of `columns` (numbers with 4 significant digits)."""

    def cell(value: Any) -> str:
        if isinstance(value, float):
            return "-" if math.isnan(value) else f"{value:.4g}"
        return str(value)

    body = [list(columns)] + [[cell(r.get(c)) for c in columns] for r in rows]
    widths = [max(len(line[i]) for line in body) for i in range(len(columns))]
    lines = ["  ".join(c.rjust(w) for c, w in zip(line, widths, strict=True)) for line in body]
    return "\n".join(lines)
