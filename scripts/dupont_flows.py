"""Figs. 2 and 9 of Dupont et al. (2019): trajectories of the flows learned by NODE, ANODE (in
its augmented space) and ResNet on the identity, g_1d and concentric spheres in d = 1, 2.

The same as `pyanode reproduce dupont-flows`, with the same options (`--paper` for the paper's
settings).

    python scripts/dupont_flows.py [--out OUT] [OPTIONS]   (--help lists them)
"""

import sys

from pyanode.cli import main

if __name__ == "__main__":
    sys.exit(main(["reproduce", "dupont-flows", *sys.argv[1:]]))
