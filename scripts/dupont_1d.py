"""Figs. 5 and 8 of Dupont et al. (2019): loss curves of NODE, ANODE and ResNet on g_1d and on
concentric spheres in d = 1, 2, mean +- std over seeds.

The same as `pyanode reproduce dupont-1d` (add `--paper` for 20 seeds and 50 epochs).

    python scripts/dupont_1d.py [OUT] [--paper]
"""

import sys

from pyanode.experiments.dupont import toy1d

if __name__ == "__main__":
    sys.exit(toy1d.EXPERIMENT.script(sys.argv[1:]))
