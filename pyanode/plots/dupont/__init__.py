"""Figures of Dupont et al., "Augmented Neural ODEs" (2019), drawn from stored results only.

Each function takes the output folder of one `pyanode reproduce dupont-*` experiment, reads its
stored trials (see `pyanode.experiments.store`) and writes PNG files next to them.
"""

from pyanode.plots.dupont.features import plot_features as plot_features
from pyanode.plots.dupont.flows import plot_flows as plot_flows
from pyanode.plots.dupont.generalisation import plot_generalisation as plot_generalisation
from pyanode.plots.dupont.images import plot_images as plot_images
from pyanode.plots.dupont.losses import plot_losses as plot_losses
from pyanode.plots.dupont.nfe import plot_nfe as plot_nfe
