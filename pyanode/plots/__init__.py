"""Figures of the papers, drawn from plain numpy arrays and stored results.

The only package that imports matplotlib; it draws on `matplotlib.figure.Figure` objects (the Agg
canvas, never pyplot), so importing it changes no global state.
"""

from pyanode.plots._style import CLASS_COLORS as CLASS_COLORS
from pyanode.plots._style import MODEL_COLORS as MODEL_COLORS
from pyanode.plots._style import MODEL_LABELS as MODEL_LABELS
from pyanode.plots._style import new_figure as new_figure
from pyanode.plots._style import save_figure as save_figure
