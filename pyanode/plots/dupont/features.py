"""Figs. 6 and 10 of Dupont et al.: features of NODE and ANODE during training."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np

from pyanode.experiments.dupont import group, read_config, read_trials
from pyanode.plots._style import new_figure, save_figure
from pyanode.plots.dupont._common import PANEL_TITLES, TARGET_COLORS, model_label


def plot_features(out: str | os.PathLike, formats: tuple[str, ...] = ("png",)) -> list[Path]:
    """Draw `fig6_features_node` and `fig10_features_anode` from the `dupont-features`
    results in `out`: one row per dataset, one column per stored iteration, the features of the
    probe points coloured by their target (blue -1, red +1); 3-D for an augmented model.

    Returns:
        The files written.

    Raises:
        FileNotFoundError: if `out` holds no finished trial.
    """
    out = Path(out)
    groups = group(read_trials(out))
    order = read_config(out).get("panels", [])  # rows in the experiment's order
    files = []
    for model, name in (("node", "fig6_features_node"), ("anode", "fig10_features_anode")):
        rows = sorted(
            ((panel, ts[0]) for (panel, m), ts in groups.items() if m == model),
            key=lambda row: order.index(row[0]) if row[0] in order else len(order),
        )
        if not rows:
            continue
        n_cols = max(len(t.arrays["snapshot_iterations"]) for _, t in rows)
        fig = new_figure(2.7 * n_cols, 2.7 * len(rows) + 0.3)
        for r, (panel, trial) in enumerate(rows):
            its, snaps = trial.arrays["snapshot_iterations"], trial.arrays["snapshots"]
            colors = np.where(
                trial.arrays["probe_y"].reshape(-1) > 0, TARGET_COLORS[1], TARGET_COLORS[-1]
            )
            for c, (it, feats) in enumerate(zip(its, snaps, strict=True)):
                slot = (len(rows), n_cols, r * n_cols + c + 1)
                if feats.shape[1] == 3:
                    ax = fig.add_subplot(*slot, projection="3d")
                    ax.scatter(feats[:, 0], feats[:, 1], feats[:, 2], c=colors, s=3)
                    ax.set_zlabel("$a$", labelpad=-2)
                    ax.tick_params(labelsize=6)
                else:
                    ax = fig.add_subplot(*slot)
                    ax.scatter(feats[:, 0], feats[:, 1], c=colors, s=3)
                    ax.set_aspect("equal", adjustable="datalim")
                ax.set_xlabel(r"$\varphi_1$")
                ax.set_ylabel(r"$\varphi_2$")
                title = f"iteration {int(it)}"
                if c == 0:
                    title = f"{PANEL_TITLES.get(panel, panel)}\n{title}"
                ax.set_title(title, fontsize=9)
        fig.suptitle(f"{model_label(model)} features during training (blue: -1, red: +1)")
        files += save_figure(fig, out / name, formats)
    return files
