"""Figs. 7 and 11b of Dupont et al. (2019): forward NFE per training iteration of NODE and ANODE
on concentric spheres (d = 2), mean +- std over seeds.

The same as `pyanode reproduce dupont-nfe`, with the same options (`--paper` for the paper's
settings).

    python scripts/dupont_nfe.py [--out OUT] [OPTIONS]   (--help lists them)
"""

import sys

from pyanode.cli import main

if __name__ == "__main__":
    sys.exit(main(["reproduce", "dupont-nfe", *sys.argv[1:]]))
