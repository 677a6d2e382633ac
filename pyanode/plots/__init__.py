"""Figures of the papers, drawn from plain numpy arrays and stored results, and their shared
look: one colour and one label per model kind, one colour per class, and figure creation and
saving without pyplot.

The only package that imports matplotlib; it draws on `matplotlib.figure.Figure` objects (the Agg
canvas, never pyplot), so importing it changes no global state. The figures of each paper are in
`table1` ("Overcoming Limitations of Neural ODEs"), `dupont` (Dupont et al.) and `studies` (the
solver studies).
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path

from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure

from pyanode._validate import check_choice
from pyanode.experiments.store import atomic_write

# one colour per ModelSpec kind (matplotlib's tab10), the same in every figure
MODEL_COLORS: dict[str, str] = {
    "resnet": "#7f7f7f",
    "node": "#1f77b4",
    "anode": "#ff7f0e",
    "il-node": "#2ca02c",
    "data-controlled": "#d62728",
    "chebyshev": "#9467bd",
    "fourier": "#8c564b",
    "stacked": "#e377c2",
    "adaptive-depth": "#17becf",
}

# the papers' names of the model kinds ("Overcoming Limitations of Neural ODEs", Table 1)
MODEL_LABELS: dict[str, str] = {
    "resnet": "ResNet",
    "node": "Vanilla NODE",
    "anode": "ANODE",
    "il-node": "IL-NODE",
    "data-controlled": "Data Controlled",
    "chebyshev": "Chebyshev",
    "fourier": "Fourier",
    "stacked": "Stacked",
    "adaptive-depth": "Adaptive depth",
}

# class k of a classification dataset: (point colour, light fill for decision regions)
CLASS_COLORS: tuple[tuple[str, str], ...] = (
    ("#1f4e9c", "#b9cdef"),
    ("#c23b22", "#f3c4b8"),
    ("#2b8a3e", "#c3e6c8"),
    ("#7b3fa0", "#dcc6ea"),
    ("#b8860b", "#f0e0b0"),
)


def new_figure(width: float, height: float) -> Figure:
    """A matplotlib Figure of `width` x `height` inches on the Agg canvas (no pyplot)."""
    fig = Figure(figsize=(width, height), layout="constrained")
    FigureCanvasAgg(fig)
    return fig


def save_figure(
    fig: Figure, path: str | os.PathLike, formats: Sequence[str] = ("png", "pdf"), dpi: int = 150
) -> list[Path]:
    """Write `fig` as `path` with each suffix in `formats`, each file whole or not at all.

    Returns:
        The paths written, in the order of `formats`.

    Raises:
        ValueError: for a format matplotlib cannot write.
        StoreError: if the disk refuses a file (see `atomic_write`).
    """
    stem = Path(path).with_suffix("")
    stem.parent.mkdir(parents=True, exist_ok=True)
    supported = fig.canvas.get_supported_filetypes()
    written = []
    for fmt in formats:
        check_choice("format", fmt, supported)
        target = stem.with_name(f"{stem.name}.{fmt}")
        written.append(atomic_write(target, lambda f, fmt=fmt: fig.savefig(f, format=fmt, dpi=dpi)))
    return written
