"""Fig. 11a/c of Dupont et al.: prediction maps and validation loss on a slice-removed split."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
from matplotlib.patches import Circle, Wedge

from pyanode.experiments.dupont import group, read_config, read_trials
from pyanode.plots._style import new_figure, save_figure
from pyanode.plots.dupont._common import (
    MODEL_ORDER,
    PANEL_TITLES,
    TARGET_CMAP,
    TARGET_COLORS,
    band,
    curve,
    model_color,
    model_label,
)

RADII = (0.5, 1.0, 1.5)  # r1, r2, r3 of App. E


def plot_generalisation(out: str | os.PathLike, formats: tuple[str, ...] = ("png",)) -> list[Path]:
    """Draw `fig11a_predictions` and `fig11c_validation` from the `dupont-generalisation`
    results in `out`.

    Fig. 11a: the value each point of the plane is mapped to by NODE and ANODE (colour scale
    -1 blue to +1 red, clipped), with the training points and the circles r = 0.5, 1, 1.5.
    Fig. 11c: validation MSE on the removed slice against iteration, mean +- std over seeds,
    with the training loss dashed.

    Returns:
        The files written.

    Raises:
        FileNotFoundError: if `out` holds no finished trial.
    """
    out = Path(out)
    groups = group(read_trials(out), MODEL_ORDER)
    config = read_config(out)
    files = []
    maps = [(m, ts[0]) for (p, m), ts in groups.items() if p == "spheres-2d"]
    if maps:
        fig = new_figure(4.2 * len(maps) + 0.8, 4.0)
        axes = np.atleast_1d(fig.subplots(1, len(maps)))
        for ax, (model, trial) in zip(axes, maps, strict=True):
            a = trial.arrays
            u, v = a["grid_u"], a["grid_v"]
            image = ax.imshow(
                np.clip(a["grid_prediction"], -1, 1), origin="lower", cmap=TARGET_CMAP,
                extent=(u[0], u[-1], v[0], v[-1]), vmin=-1, vmax=1,
            )  # fmt: skip
            colors = np.where(a["probe_y"].reshape(-1) > 0, TARGET_COLORS[1], TARGET_COLORS[-1])
            ax.scatter(*a["probe_x"].T, c=colors, s=2, edgecolors="white", linewidths=0.2)
            for r in RADII:
                ax.add_patch(Circle((0, 0), r, fill=False, color="k", linewidth=0.6, ls="--"))
            loss = trial.result["train_loss"]
            ax.set_title(f"{model_label(model)} (training MSE {loss:.3f})")
            ax.set_xlabel("$x_1$")
            ax.set_ylabel("$x_2$")
        fig.colorbar(image, ax=list(axes), label="predicted value (clipped to [-1, 1])")
        files += save_figure(fig, out / "fig11a_predictions", formats)
    sliced = [(m, ts) for (p, m), ts in groups.items() if p == "slice-removed"]
    if sliced:
        fig = new_figure(9.0, 3.6)
        ax_val, ax_data = fig.subplots(1, 2, width_ratios=(2, 1))
        for model, trials in sliced:
            color = model_color(model)
            its, val = curve(trials, "test_loss")
            band(ax_val, its, val, color=color, label=f"{model_label(model)} validation")
            its, loss = curve(trials, "loss")
            window = max(1, len(its) // 50)
            band(
                ax_val, its, loss, color=color, label=f"{model_label(model)} training",
                window=window, linestyle="--",
            )  # fmt: skip
        ax_val.set_title(PANEL_TITLES["slice-removed"])
        ax_val.set_xlabel("iteration")
        ax_val.set_ylabel("loss (MSE)")
        ax_val.set_ylim(bottom=0)
        ax_val.legend(fontsize=7)
        # the split itself: training points and the removed wedge
        lo, hi = config.get("angle_lo", 0.0), config.get("angle_hi", np.pi / 5)
        maps_trial = maps[0][1] if maps else None
        if maps_trial is not None:
            a = maps_trial.arrays
            colors = np.where(a["probe_y"].reshape(-1) > 0, TARGET_COLORS[1], TARGET_COLORS[-1])
            ax_data.scatter(*a["probe_x"].T, c=colors, s=2)
        ax_data.add_patch(
            Wedge((0, 0), 1.6, np.degrees(lo), np.degrees(hi), color="0.6", alpha=0.5,
                  label="removed (validation)")
        )  # fmt: skip
        ax_data.set_aspect("equal")
        ax_data.set_xlim(-1.7, 1.7)
        ax_data.set_ylim(-1.7, 1.7)
        ax_data.set_title("data and removed slice")
        ax_data.set_xlabel("$x_1$")
        ax_data.set_ylabel("$x_2$")
        ax_data.legend(fontsize=7, loc="lower left")
        files += save_figure(fig, out / "fig11c_validation", formats)
    return files
