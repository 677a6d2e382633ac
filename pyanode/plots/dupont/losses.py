"""Figs. 5 and 8 of Dupont et al.: training loss of NODE, ANODE and ResNet per iteration."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np

from pyanode.experiments.dupont import group, read_trials
from pyanode.experiments.store import read_json
from pyanode.plots._style import new_figure, save_figure
from pyanode.plots.dupont._common import (
    MODEL_ORDER,
    PANEL_TITLES,
    band,
    curve,
    default_window,
    model_color,
    model_label,
)


def plot_losses(out: str | os.PathLike, formats: tuple[str, ...] = ("png",)) -> list[Path]:
    """Draw `fig5_fig8_losses` from the `dupont-1d` results stored in `out`.

    One panel per dataset: the per-iteration training MSE of each model, mean +- std over seeds
    (running mean over ~2% of the run), with the closed-form references of `summary.json`:
    the best constant's loss and, in 1-D, the lowest loss any NODE can reach.

    Returns:
        The files written.

    Raises:
        FileNotFoundError: if `out` holds no finished trial.
    """
    out = Path(out)
    groups = group(read_trials(out), MODEL_ORDER)
    groups = dict(sorted(groups.items(), key=lambda kv: kv[0][0]))  # panels, then models
    summary = read_json(out / "summary.json") if (out / "summary.json").exists() else {}
    panels = list(dict.fromkeys(panel for panel, _ in groups))
    fig = new_figure(4.2 * len(panels), 3.4)
    axes = np.atleast_1d(fig.subplots(1, len(panels)))
    for ax, panel in zip(axes, panels, strict=True):
        top = 0.0
        for (p, model), trials in groups.items():
            if p != panel:
                continue
            its, loss = curve(trials, "loss")
            band(
                ax,
                its,
                loss,
                color=model_color(model),
                label=model_label(model),
                window=default_window(len(its)),
            )
            top = max(top, float(np.nanpercentile(loss[:, len(its) // 10 :], 99)))
        refs = summary.get(panel, {}).get("references", {})
        if "constant" in refs:
            ax.axhline(
                refs["constant"], color="k", linestyle=":", linewidth=1, label="best constant"
            )
            top = max(top, refs["constant"])
        if "node_floor" in refs:
            ax.axhline(
                refs["node_floor"], color=model_color("node"), linestyle="--", linewidth=1,
                label="lowest NODE loss (monotone map)",
            )  # fmt: skip
        ax.set_ylim(0, 1.15 * top)
        ax.set_title(PANEL_TITLES.get(panel, panel))
        ax.set_xlabel("iteration")
        ax.set_ylabel("training loss (MSE)")
        ax.legend(fontsize=7)
    return save_figure(fig, out / "fig5_fig8_losses", formats)
