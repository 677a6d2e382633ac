"""Figs. 5 and 8 of Dupont et al. (2019): loss curves of NODE, ANODE and ResNet on g_1d and on
concentric spheres in d = 1, 2, mean +- std over seeds.

The same as `pyanode reproduce dupont-1d`, with the same options (`--paper` for the paper's
settings).

    python scripts/dupont_1d.py [--out OUT] [OPTIONS]   (--help lists them)
"""

import sys

from pyanode.cli import main

if __name__ == "__main__":
    sys.exit(main(["reproduce", "dupont-1d", *sys.argv[1:]]))
