"""Fig. 11a/c of Dupont et al. (2019): what NODE and ANODE predict over the input plane, and
their validation loss when the slice of angles [0, pi/5] is held out of concentric spheres.

The same as `pyanode reproduce dupont-generalisation`.

    python scripts/dupont_generalisation.py [OUT] [--paper]
"""

import sys

from pyanode.experiments.dupont import GeneralisationConfig, generalisation
from pyanode.plots.dupont import plot_generalisation

if __name__ == "__main__":
    out = next((a for a in sys.argv[1:] if not a.startswith("--")), "results/dupont-generalisation")
    paper = "--paper" in sys.argv
    config = GeneralisationConfig(**GeneralisationConfig.PAPER) if paper else GeneralisationConfig()
    print(generalisation.format_summary(generalisation.run(config, out)))
    print("figures:", *plot_generalisation(out))
