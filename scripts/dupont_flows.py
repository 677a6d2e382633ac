"""Figs. 2 and 9 of Dupont et al. (2019): trajectories of the flows learned by NODE, ANODE (in
its augmented space) and ResNet on the identity, g_1d and concentric spheres in d = 1, 2.

The same as `pyanode reproduce dupont-flows`.

    python scripts/dupont_flows.py [OUT] [--paper]
"""

import sys

from pyanode.experiments.dupont import flows

if __name__ == "__main__":
    sys.exit(flows.EXPERIMENT.script(sys.argv[1:]))
