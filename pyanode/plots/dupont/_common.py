"""The shared look of the Dupont et al. figures: the paper's model names, curves with a
mean +- std band over seeds, and the target colours of the toy problems."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
from matplotlib.axes import Axes

from pyanode.experiments.dupont import stack
from pyanode.experiments.store import StoredTrial
from pyanode.plots._style import MODEL_COLORS

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
