"""Fig. 11a/c of Dupont et al. (2019): what NODE and ANODE predict over the input plane, and
their validation loss when the slice of angles [0, pi/5] is held out of concentric spheres.

The same as `pyanode reproduce dupont-generalisation`.

    python scripts/dupont_generalisation.py [OUT] [--paper]
"""

import sys

from pyanode.experiments.dupont import generalisation

if __name__ == "__main__":
    sys.exit(generalisation.EXPERIMENT.script(sys.argv[1:]))
