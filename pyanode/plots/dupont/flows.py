"""Figs. 2 and 9 of Dupont et al.: the trajectories of learned flows."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
from matplotlib.axes import Axes
from matplotlib.lines import Line2D

from pyanode.experiments.dupont import read_trials
from pyanode.experiments.store import StoredTrial
from pyanode.plots._style import new_figure, save_figure
from pyanode.plots.dupont._common import PANEL_TITLES, TARGET_COLORS, model_label

GRID_COLOR = "#b0b0b0"


def _colors(y: np.ndarray) -> list[str]:
    return [TARGET_COLORS[1] if v > 0 else TARGET_COLORS[-1] for v in np.asarray(y).reshape(-1)]


def _target_legend(ax: Axes, grid: bool) -> None:
    handles = [
        Line2D([], [], color=TARGET_COLORS[-1], label="target -1"),
        Line2D([], [], color=TARGET_COLORS[1], label="target +1"),
    ]
    if grid:
        handles.append(Line2D([], [], color=GRID_COLOR, label="other starts"))
    ax.legend(handles=handles, fontsize=7, loc="best")


def _title(trial: StoredTrial) -> str:
    loss = trial.result.get("train_loss")
    tail = f"\nfinal MSE {loss:.3f}" if loss is not None else ""
    panel = trial.key["panel"]
    return f"{model_label(trial.key['model'])}: {PANEL_TITLES.get(panel, panel)}{tail}"


def _time_paths(ax: Axes, trial: StoredTrial) -> None:
    """1-D state against time (or layer), probe points coloured by target, grid lines in grey."""
    a = trial.arrays
    if "layer_states" in a:
        xs, paths, grid = np.arange(len(a["layer_states"])), a["layer_states"], "grid_layer_states"
        ax.set_xlabel("layer (residual block)")
    else:
        xs, paths, grid = a["ts"], a["trajectories"], "grid_trajectories"
        ax.set_xlabel("time t")
    if grid in a:
        ax.plot(xs, a[grid][:, :, 0], color=GRID_COLOR, linewidth=0.6, zorder=1)
    for i, color in enumerate(_colors(a["probe_y"])):
        ax.plot(xs, paths[:, i, 0], color=color, linewidth=1.0, alpha=0.8, zorder=2)
    ax.set_ylabel("h (state)")
    _target_legend(ax, grid in a)


def _plane_paths(ax: Axes, trial: StoredTrial, labels: tuple[str, str]) -> None:
    """Paths in a 2-D state space (x, a) or (x1, x2): start dots, end crosses."""
    a = trial.arrays
    paths = a["trajectories"]
    if "grid_trajectories" in a:
        g = a["grid_trajectories"]
        ax.plot(g[:, :, 0], g[:, :, 1], color=GRID_COLOR, linewidth=0.6, zorder=1)
    for i, color in enumerate(_colors(a["probe_y"])):
        ax.plot(paths[:, i, 0], paths[:, i, 1], color=color, linewidth=0.8, alpha=0.7, zorder=2)
    colors = _colors(a["probe_y"])
    ax.scatter(paths[0, :, 0], paths[0, :, 1], c=colors, s=8, marker="o", zorder=3)
    ax.scatter(paths[-1, :, 0], paths[-1, :, 1], c=colors, s=14, marker="x", zorder=3)
    ax.set_xlabel(labels[0])
    ax.set_ylabel(labels[1])
    _target_legend(ax, "grid_trajectories" in a)


def _space_paths(ax: Axes, trial: StoredTrial) -> None:
    """Paths of a 2-D input in the 3-D augmented space (x1, x2, a)."""
    paths = trial.arrays["trajectories"]
    colors = _colors(trial.arrays["probe_y"])
    for i, color in enumerate(colors):
        ax.plot(paths[:, i, 0], paths[:, i, 1], paths[:, i, 2], color=color, linewidth=0.7)
    ax.scatter(paths[-1, :, 0], paths[-1, :, 1], paths[-1, :, 2], c=colors, s=8, marker="x")
    ax.set_xlabel("$x_1$")
    ax.set_ylabel("$x_2$")
    ax.set_zlabel("$a$ (augmented)")


def _draw(fig, slot: tuple[int, int, int], trial: StoredTrial) -> None:
    dim = trial.arrays["probe_x"].shape[1]
    state = trial.arrays.get("trajectories", trial.arrays.get("layer_states"))
    width = state.shape[-1]
    if width == 3:
        ax = fig.add_subplot(*slot, projection="3d")
        _space_paths(ax, trial)
    else:
        ax = fig.add_subplot(*slot)
        if width == 1:
            _time_paths(ax, trial)
        elif dim == 1:
            _plane_paths(ax, trial, ("h (state)", "a (augmented)"))
        else:
            _plane_paths(ax, trial, ("$x_1$", "$x_2$"))
    ax.set_title(_title(trial), fontsize=9)


def plot_flows(out: str | os.PathLike, formats: tuple[str, ...] = ("png",)) -> list[Path]:
    """Draw `fig2_flows` (ResNet, NODE on the identity and g_1d, ANODE on g_1d) and
    `fig9_flows` (NODE and ANODE on concentric spheres, d = 1, 2) from the `dupont-flows`
    results in `out` (seed 0, or the smallest stored seed).

    Returns:
        The files written.

    Raises:
        FileNotFoundError: if `out` holds no finished trial.
    """
    out = Path(out)
    # the smallest seed wins
    trials = {(t.key["panel"], t.key["model"]): t for t in reversed(read_trials(out))}
    if not trials:
        raise FileNotFoundError(f"no finished dupont-flows trial under {out}; run it first")
    files = []
    for name, keys in (
        (
            "fig2_flows",
            [("g1d", "resnet"), ("identity", "node"), ("g1d", "node"), ("g1d", "anode")],
        ),
        (
            "fig9_flows",
            [
                ("spheres-1d", "node"),
                ("spheres-1d", "anode"),
                ("spheres-2d", "node"),
                ("spheres-2d", "anode"),
            ],
        ),
    ):
        present = [trials[k] for k in keys if k in trials]
        if not present:
            continue
        fig = new_figure(3.6 * len(present), 3.6)
        for i, trial in enumerate(present, 1):
            _draw(fig, (1, len(present), i), trial)
        files += save_figure(fig, out / name, formats)
    return files
