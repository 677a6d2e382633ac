"""Figures of the solver studies, drawn from their CSV tables alone.

Work-precision plots are log-log with one line per solver, in the same colour in every figure
(`SOLVER_COLORS`); the gradient method and the batch mode are told apart by the line style and
the backend by the marker. The cross-solver study is a pair of heatmaps.
"""

from __future__ import annotations

import csv
import math
import os
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
from matplotlib.axes import Axes
from matplotlib.lines import Line2D

from pyanode._names import FIXED_STEP_SOLVERS
from pyanode.plots import new_figure, save_figure

# one colour per solver (matplotlib's tab10), the same in every study figure
SOLVER_COLORS: dict[str, str] = {
    "euler": "#7f7f7f",
    "midpoint": "#8c564b",
    "rk4": "#9467bd",
    "bosh3": "#2ca02c",
    "dp5": "#1f77b4",
    "tsit5": "#ff7f0e",
}
FIXED_STEP_STYLES: dict[str, str] = dict.fromkeys(FIXED_STEP_SOLVERS, "--")
GRADIENT_STYLES: dict[str, str] = {"backprop": "-", "adjoint": "--", "adjoint-fullnorm": ":"}
MODE_STYLES: dict[str, str] = {"batch": "-", "per-sample": "--"}
BACKEND_MARKERS: dict[str, str] = {"torch": "o", "julia": "s"}


def read_table(path: str | os.PathLike) -> list[dict[str, Any]]:
    """The rows of a study CSV: numbers as floats, empty cells as NaN, other cells as text.

    Raises:
        FileNotFoundError: if `path` does not exist.
    """
    with open(path, newline="", encoding="utf-8") as f:
        return [{k: _value(v) for k, v in row.items()} for row in csv.DictReader(f)]


def _value(text: str) -> Any:
    if text == "":
        return math.nan
    try:
        return float(text)
    except ValueError:
        return text


def _read(path: str | os.PathLike, columns: Sequence[str]) -> list[dict[str, Any]]:
    """The rows of the study table at `path`, checked to be non-empty and to have `columns`."""
    rows = read_table(path)
    if not rows:
        raise ValueError(f"study table {str(path)!r} has no rows to plot")
    missing = [c for c in columns if c not in rows[0]]
    if missing:
        raise ValueError(
            f"study table {str(path)!r} lacks the column(s) {', '.join(missing)}; "
            f"expected {', '.join(columns)}"
        )
    return rows


def _color(solver: str) -> str:
    return SOLVER_COLORS.get(solver, "#000000")


def _groups(rows: list[dict[str, Any]], keys: Sequence[str]) -> dict[tuple, list[dict]]:
    out: dict[tuple, list[dict]] = {}
    for row in rows:
        out.setdefault(tuple(row[k] for k in keys), []).append(row)
    return out


def _line(ax: Axes, rows: list[dict], x: str, y: str, **style: Any) -> None:
    """Plot the positive, finite (x, y) points of `rows`, joined in table order (tolerance
    or step count)."""
    pts = [
        (r[x], r[y])
        for r in rows
        if r.get("status", "ok") == "ok" and _positive(r[x]) and _positive(r[y])
    ]
    if pts:
        xs, ys = zip(*pts, strict=True)
        ax.plot(xs, ys, markersize=4, linewidth=1.4, **style)


def _positive(v: Any) -> bool:
    return isinstance(v, float) and math.isfinite(v) and v > 0


def _loglog(ax: Axes, xlabel: str, ylabel: str) -> None:
    ax.set_xscale("log")
    ax.set_yscale("log")
    ax.set_xlabel(xlabel)
    ax.set_ylabel(ylabel)
    ax.grid(True, which="major", alpha=0.3)


def _solver_legend(ax: Axes, solvers: Sequence[str], styles: dict[str, str] | None = None):
    handles = [Line2D([], [], color=_color(s), marker="o", markersize=4, label=s) for s in solvers]
    for name, ls in (styles or {}).items():
        handles.append(Line2D([], [], color="black", linestyle=ls, label=name))
    ax.legend(handles=handles, fontsize=7, loc="best")


def _panel(
    ax: Axes,
    rows: list[dict[str, Any]],
    x: str,
    y: str,
    labels: tuple[str, str],
    line_by: str,
    styles: dict[str, str],
    other: str,
) -> None:
    """One log-log panel of `y` against `x`: a line per backend (marker), solver (colour) and
    value of the column `line_by` (line style from `styles`, `other` for a value not in it)."""
    for key, group in _groups(rows, tuple(dict.fromkeys(("backend", "solver", line_by)))).items():
        backend, solver, line = key[0], key[1], key[-1]
        style = {
            "color": _color(solver),
            "marker": BACKEND_MARKERS.get(backend, "^"),
            "linestyle": styles.get(line, other),
        }
        _line(ax, group, x, y, **style)
    _loglog(ax, *labels)


def _solvers(rows: list[dict[str, Any]]) -> list[str]:
    return list(dict.fromkeys(r["solver"] for r in rows))


def _title(rows: list[dict], what: str) -> str:
    problems = sorted({str(r.get("problem", "")) for r in rows} - {""})
    backends = sorted({str(r["backend"]) for r in rows})
    return f"{what}: {', '.join(problems) or 'trained model'} ({', '.join(backends)})"


FORWARD_COLUMNS = ("backend", "problem", "solver", "nfe_forward", "seconds", "error", "status")


def plot_forward(
    table: str | os.PathLike, path: str | os.PathLike, formats: Sequence[str] = ("png", "pdf")
) -> list[Path]:
    """Forward work-precision: relative error of y(t1) against NFE and against wall time, one
    line per solver (fixed-step solvers dashed).

    Returns:
        The files written.

    Raises:
        ValueError: if the table lacks a column of `FORWARD_COLUMNS` or has no rows.
    """
    rows = _read(table, FORWARD_COLUMNS)
    fig = new_figure(9.0, 3.8)
    axes = fig.subplots(1, 2)
    panels = (("nfe_forward", "NFE (forward)"), ("seconds", "wall time per solve [s]"))
    for ax, (x, xlabel) in zip(axes, panels, strict=True):
        labels = (xlabel, "relative error of y(t1)")
        _panel(ax, rows, x, "error", labels, "solver", FIXED_STEP_STYLES, "-")
    _solver_legend(axes[0], _solvers(rows))
    fig.suptitle(_title(rows, "Work-precision"), fontsize=10)
    return save_figure(fig, path, formats)


GRADIENT_COLUMNS = (
    "backend",
    "problem",
    "solver",
    "gradient",
    "nfe_total",
    "seconds",
    "peak_bytes",
    "error",
    "status",
)


def plot_gradient(
    table: str | os.PathLike, path: str | os.PathLike, formats: Sequence[str] = ("png", "pdf")
) -> list[Path]:
    """Gradient work-precision: relative error of the parameter gradient against NFE (forward +
    backward), wall time (forward + backward) and peak memory; colour per solver, line style
    per gradient method.

    Returns:
        The files written.

    Raises:
        ValueError: if the table lacks a column of `GRADIENT_COLUMNS` or has no rows.
    """
    rows = _read(table, GRADIENT_COLUMNS)
    fig = new_figure(13.0, 4.0)
    axes = fig.subplots(1, 3)
    panels = (
        ("nfe_total", "NFE (forward + backward)"),
        ("seconds", "wall time, forward + backward [s]"),
        ("peak_bytes", "peak memory, forward + backward [bytes]"),
    )
    for ax, (x, xlabel) in zip(axes, panels, strict=True):
        labels = (xlabel, "relative error of the gradient")
        _panel(ax, rows, x, "error", labels, "gradient", GRADIENT_STYLES, "-.")
    gradients = dict.fromkeys(r["gradient"] for r in rows)
    _solver_legend(axes[0], _solvers(rows), {g: GRADIENT_STYLES.get(g, "-.") for g in gradients})
    fig.suptitle(_title(rows, "Gradient work-precision"), fontsize=10)
    return save_figure(fig, path, formats)


BATCH_COLUMNS = (
    "backend",
    "problem",
    "solver",
    "rtol",
    "mode",
    "nfe_forward",
    "seconds",
    "error",
    "error_max_sample",
    "status",
)


def plot_batch_coupling(
    table: str | os.PathLike, path: str | os.PathLike, formats: Sequence[str] = ("png", "pdf")
) -> list[Path]:
    """Batch coupling: batch error and worst-sample error against NFE per sample, and wall
    time against rtol; colour per solver, solid for one batch solve, dashed per sample.

    Returns:
        The files written.

    Raises:
        ValueError: if the table lacks a column of `BATCH_COLUMNS` or has no rows.
    """
    rows = _read(table, BATCH_COLUMNS)
    fig = new_figure(13.0, 4.0)
    axes = fig.subplots(1, 3)
    panels = (
        ("nfe_forward", "error", ("NFE per sample", "relative error of the batch's y(t1)")),
        ("nfe_forward", "error_max_sample", ("NFE per sample", "worst sample's relative error")),
        ("rtol", "seconds", ("rtol (= atol)", "wall time for the batch [s]")),
    )
    for ax, (x, y, labels) in zip(axes, panels, strict=True):
        _panel(ax, rows, x, y, labels, "mode", MODE_STYLES, "-.")
    axes[2].invert_xaxis()
    _solver_legend(axes[0], _solvers(rows), MODE_STYLES)
    fig.suptitle(_title(rows, "Batch coupling"), fontsize=10)
    return save_figure(fig, path, formats)


CROSS_COLUMNS = ("backend", "trained_with", "evaluated_with", "test_acc", "gap", "status")


def plot_cross_solver(
    table: str | os.PathLike, path: str | os.PathLike, formats: Sequence[str] = ("png", "pdf")
) -> list[Path]:
    """Train with one solver, test with another: heatmaps of the test accuracy and of its gap
    to the exact flow (percentage points), rows the training setting, columns the evaluation.

    Returns:
        The files written.

    Raises:
        ValueError: if the table lacks a column of `CROSS_COLUMNS` or has no rows.
    """
    rows = _read(table, CROSS_COLUMNS)
    trained = list(dict.fromkeys(f"{r['trained_with']} ({r['backend']})" for r in rows))
    evaluated = list(dict.fromkeys(str(r["evaluated_with"]) for r in rows))
    acc = np.full((len(trained), len(evaluated)), np.nan)
    gap = np.full_like(acc, np.nan)
    for r in rows:
        i = trained.index(f"{r['trained_with']} ({r['backend']})")
        j = evaluated.index(str(r["evaluated_with"]))
        acc[i, j], gap[i, j] = 100 * r["test_acc"], 100 * r["gap"]
    fig = new_figure(3.0 + 1.9 * len(evaluated), 1.6 + 0.55 * len(trained))
    axes = fig.subplots(1, 2)
    span = max(float(np.nanmax(np.abs(gap))) if np.isfinite(gap).any() else 0.0, 1.0)
    panels = (
        (axes[0], acc, "viridis", (None, None), "test accuracy [%]"),
        (axes[1], gap, "RdBu", (-span, span), "accuracy minus exact flow's [points]"),
    )
    for ax, values, cmap, (lo, hi), title in panels:
        image = ax.imshow(values, cmap=cmap, vmin=lo, vmax=hi, aspect="auto")
        ax.set_xticks(range(len(evaluated)), evaluated, rotation=35, ha="right", fontsize=8)
        ax.set_yticks(range(len(trained)), trained, fontsize=8)
        ax.set_xlabel("evaluated with")
        ax.set_ylabel("trained with")
        ax.set_title(title, fontsize=9)
        for (i, j), v in np.ndenumerate(values):
            if np.isfinite(v):
                ax.text(
                    j,
                    i,
                    f"{v:.1f}",
                    ha="center",
                    va="center",
                    fontsize=7,
                    color="black",
                    bbox={"boxstyle": "round,pad=0.1", "fc": "white", "alpha": 0.6, "lw": 0},
                )
        fig.colorbar(image, ax=ax, shrink=0.8)
    fig.suptitle("Train with one solver, test with another", fontsize=10)
    return save_figure(fig, path, formats)
