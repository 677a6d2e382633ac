"""Reproductions of Dupont et al., "Augmented Neural ODEs" (NeurIPS 2019).

One module per experiment, each describing itself as an `EXPERIMENT` (`_experiment.
DupontExperiment`): a frozen config dataclass (its defaults run in minutes on a laptop CPU;
`PAPER` holds the paper's values), its trials, summary and figures. Each module exposes
`run(config, out)`, which trains and stores every trial (see `_results` for the layout), and
the `describe` / `add_arguments` / `main` of `pyanode reproduce <name>`; the figures are drawn
by `pyanode.plots.dupont` from the stored results alone.

- `toy1d` (dupont-1d): loss curves on g_1d and concentric spheres, d = 1, 2 (Figs. 5, 8);
- `flows` (dupont-flows): trajectories of the learned flows (Figs. 2, 9);
- `features` (dupont-features): features during training (Figs. 6, 10);
- `nfe` (dupont-nfe): forward NFE per iteration, NODE vs ANODE (Figs. 7, 11b);
- `generalisation` (dupont-generalisation): prediction maps, slice-removed validation (Fig. 11a/c);
- `images` (dupont-images): conv NODE vs ANODE on digits / MNIST / CIFAR-10 (§5.2, Figs. 13, 14).
"""

from pyanode.experiments.dupont._results import StoredTrial as StoredTrial
from pyanode.experiments.dupont._results import read_trial as read_trial
from pyanode.experiments.dupont._results import read_trials as read_trials
from pyanode.experiments.dupont.features import FeaturesConfig as FeaturesConfig
from pyanode.experiments.dupont.flows import FlowsConfig as FlowsConfig
from pyanode.experiments.dupont.generalisation import (
    GeneralisationConfig as GeneralisationConfig,
)
from pyanode.experiments.dupont.images import ImagesConfig as ImagesConfig
from pyanode.experiments.dupont.nfe import NFEConfig as NFEConfig
from pyanode.experiments.dupont.toy1d import Toy1dConfig as Toy1dConfig

# `pyanode reproduce` name -> module
EXPERIMENTS = {
    "dupont-1d": "pyanode.experiments.dupont.toy1d",
    "dupont-flows": "pyanode.experiments.dupont.flows",
    "dupont-features": "pyanode.experiments.dupont.features",
    "dupont-nfe": "pyanode.experiments.dupont.nfe",
    "dupont-generalisation": "pyanode.experiments.dupont.generalisation",
    "dupont-images": "pyanode.experiments.dupont.images",
}
