"""Figures 1 and 2 of "Overcoming Limitations of Neural ODEs": the three-spheres dataset and the
decision boundaries of the nets of Table 1, one panel per net."""

from __future__ import annotations

import math
import os
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from matplotlib.axes import Axes
from matplotlib.colors import ListedColormap

from pyanode.plots import CLASS_COLORS, MODEL_COLORS, new_figure, save_figure


@dataclass(frozen=True)
class DecisionBoundary:
    """The class a trained net predicts at each point of a grid, for one panel of Fig. 2.

    Arguments:
        name: the net's name (the panel title).
        kind: its ModelSpec kind (the panel's frame colour, from `MODEL_COLORS`).
        xs, ys: the grid's coordinates, shapes (G_x,) and (G_y,).
        classes: predicted class at (xs[j], ys[i]), int array of shape (G_y, G_x).
        test_acc: the net's test accuracy in [0, 1], shown in the title.
    """

    name: str
    kind: str
    xs: np.ndarray
    ys: np.ndarray
    classes: np.ndarray
    test_acc: float


def _scatter_classes(ax: Axes, x: np.ndarray, y: np.ndarray, size: float, legend: bool) -> None:
    for c in np.unique(y):
        point, _ = CLASS_COLORS[int(c) % len(CLASS_COLORS)]
        pts = x[y == c]
        ax.scatter(
            pts[:, 0],
            pts[:, 1],
            s=size,
            c=point,
            edgecolors="white",
            linewidths=0.3,
            label=f"class {int(c)}" if legend else None,
        )


def plot_dataset(
    x: np.ndarray,
    y: np.ndarray,
    path: str | os.PathLike,
    *,
    title: str = "Three spheres",
    formats: Sequence[str] = ("png", "pdf"),
) -> list[Path]:
    """Fig. 1: the points of a 2-D classification dataset coloured by class.

    Arguments:
        x: points, shape (N, 2) (further coordinates are ignored).
        y: integer labels, shape (N,).
        path: where to write, without or with a suffix (replaced by each format's).

    Returns:
        The files written.

    Raises:
        ValueError: if x is not (N, >= 2) or y not (N,).
    """
    x, y = np.asarray(x), np.asarray(y)
    if x.ndim != 2 or x.shape[1] < 2 or y.shape != (x.shape[0],):
        raise ValueError(f"need x (N, >= 2) and y (N,), got x {x.shape} and y {y.shape}")
    fig = new_figure(4.2, 4.0)
    ax = fig.add_subplot()
    _scatter_classes(ax, x, y, size=10, legend=True)
    ax.set_aspect("equal")
    ax.set_title(f"{title} ({len(x)} points)")
    ax.set_xlabel("$x_1$")
    ax.set_ylabel("$x_2$")
    ax.legend(loc="upper right", fontsize=8, framealpha=0.9)
    return save_figure(fig, path, formats)


def plot_decision_boundaries(
    panels: Sequence[DecisionBoundary],
    x: np.ndarray,
    y: np.ndarray,
    path: str | os.PathLike,
    *,
    ncols: int = 3,
    formats: Sequence[str] = ("png", "pdf"),
) -> list[Path]:
    """Fig. 2: one panel per net, the predicted class filled over the plane, the points on top.

    Arguments:
        panels: one `DecisionBoundary` per net, in the order drawn (row by row).
        x, y: the points drawn on every panel (e.g. the test set) and their labels.
        path: where to write, without or with a suffix (replaced by each format's).
        ncols: panels per row.

    Returns:
        The files written.

    Raises:
        ValueError: for no panels, or a panel whose `classes` does not match its grid.
    """
    if not panels:
        raise ValueError("panels is empty: need one DecisionBoundary per net")
    for p in panels:
        if p.classes.shape != (len(p.ys), len(p.xs)):
            raise ValueError(
                f"panel {p.name!r}: classes has shape {p.classes.shape}, expected "
                f"(len(ys), len(xs)) = ({len(p.ys)}, {len(p.xs)})"
            )
    x, y = np.asarray(x), np.asarray(y)
    n_classes = int(max(y.max(), max(int(p.classes.max()) for p in panels))) + 1
    fills = ListedColormap([CLASS_COLORS[c % len(CLASS_COLORS)][1] for c in range(n_classes)])
    ncols = min(ncols, len(panels))
    nrows = math.ceil(len(panels) / ncols)
    fig = new_figure(3.0 * ncols, 3.0 * nrows + 0.3)
    axes = fig.subplots(nrows, ncols, squeeze=False)
    for ax, p in zip(axes.flat, panels, strict=False):
        ax.contourf(
            p.xs,
            p.ys,
            p.classes,
            levels=np.arange(n_classes + 1) - 0.5,
            cmap=fills,
            antialiased=True,
        )
        _scatter_classes(ax, x, y, size=4, legend=False)
        ax.set_aspect("equal")
        ax.set_xticks([])
        ax.set_yticks([])
        ax.set_title(f"{p.name}\ntest acc {100 * p.test_acc:.1f}%", fontsize=10)
        for spine in ax.spines.values():
            spine.set_color(MODEL_COLORS.get(p.kind, "black"))
            spine.set_linewidth(2.0)
    for ax in axes.flat[len(panels) :]:
        ax.set_axis_off()
    fig.suptitle("Decision boundaries on three spheres")
    return save_figure(fig, path, formats)
