"""Figs. 7 and 11b of Dupont et al.: forward NFE (and loss) per training iteration."""

from __future__ import annotations

import os
from pathlib import Path

from pyanode.experiments.dupont import group, read_trials
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


def plot_nfe(out: str | os.PathLike, formats: tuple[str, ...] = ("png",)) -> list[Path]:
    """Draw `fig7_fig11b_nfe` from the `dupont-nfe` results in `out`: forward NFE per
    iteration (left) and training loss (right) of each model, mean +- std over seeds (running
    mean over ~2% of the run).

    Returns:
        The files written.

    Raises:
        FileNotFoundError: if `out` holds no finished trial.
    """
    out = Path(out)
    groups = group(read_trials(out), MODEL_ORDER)
    fig = new_figure(9.0, 3.5)
    ax_nfe, ax_loss = fig.subplots(1, 2)
    for (panel, model), trials in groups.items():
        for ax, key in ((ax_nfe, "nfe_forward"), (ax_loss, "loss")):
            its, values = curve(trials, key)
            window = default_window(len(its))
            color, label = model_color(model), model_label(model)
            band(ax, its, values, color=color, label=label, window=window)
        title = PANEL_TITLES.get(panel, panel)
    ax_nfe.set_title(f"forward NFE per iteration, {title}")
    ax_nfe.set_xlabel("iteration")
    ax_nfe.set_ylabel("NFE (forward pass)")
    ax_nfe.set_ylim(bottom=0)
    ax_loss.set_title(f"training loss, {title}")
    ax_loss.set_xlabel("iteration")
    ax_loss.set_ylabel("training loss (MSE)")
    ax_loss.set_ylim(bottom=0)
    for ax in (ax_nfe, ax_loss):
        ax.legend(fontsize=8)
    return save_figure(fig, out / "fig7_fig11b_nfe", formats)
