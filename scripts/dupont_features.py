"""Figs. 6 and 10 of Dupont et al. (2019): the features of NODE and ANODE at several iterations
of training on concentric spheres (d = 2) and on a separable control set.

The same as `pyanode reproduce dupont-features`, with the same options (`--paper` for the paper's
settings).

    python scripts/dupont_features.py [--out OUT] [OPTIONS]   (--help lists them)
"""

import sys

from pyanode.cli import main

if __name__ == "__main__":
    sys.exit(main(["reproduce", "dupont-features", *sys.argv[1:]]))
