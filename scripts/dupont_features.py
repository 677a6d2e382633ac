"""Figs. 6 and 10 of Dupont et al. (2019): the features of NODE and ANODE at several iterations
of training on concentric spheres (d = 2) and on a separable control set.

The same as `pyanode reproduce dupont-features`.

    python scripts/dupont_features.py [OUT] [--paper]
"""

import sys

from pyanode.experiments.dupont import features

if __name__ == "__main__":
    sys.exit(features.EXPERIMENT.script(sys.argv[1:]))
