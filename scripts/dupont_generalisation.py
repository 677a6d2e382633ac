"""Fig. 11a/c of Dupont et al. (2019): what NODE and ANODE predict over the input plane, and
their validation loss when the slice of angles [0, pi/5] is held out of concentric spheres.

The same as `pyanode reproduce dupont-generalisation`, with the same options (`--paper` for the
paper's settings).

    python scripts/dupont_generalisation.py [--out OUT] [OPTIONS]   (--help lists them)
"""

import sys

from pyanode.cli import main

if __name__ == "__main__":
    sys.exit(main(["reproduce", "dupont-generalisation", *sys.argv[1:]]))
