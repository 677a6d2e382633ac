"""Figs. 7 and 11b of Dupont et al. (2019): forward NFE per training iteration of NODE and ANODE
on concentric spheres (d = 2), mean +- std over seeds.

The same as `pyanode reproduce dupont-nfe` (add `--paper` for 20 seeds and 50 epochs).

    python scripts/dupont_nfe.py [OUT] [--paper]
"""

import sys

from pyanode.experiments.dupont import nfe

if __name__ == "__main__":
    sys.exit(nfe.EXPERIMENT.script(sys.argv[1:]))
