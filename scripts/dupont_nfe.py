"""Figs. 7 and 11b of Dupont et al. (2019): forward NFE per training iteration of NODE and ANODE
on concentric spheres (d = 2), mean +- std over seeds.

The same as `pyanode reproduce dupont-nfe` (add `--paper` for 20 seeds and 50 epochs).

    python scripts/dupont_nfe.py [OUT] [--paper]
"""

import sys

from pyanode.experiments.dupont import NFEConfig, nfe
from pyanode.plots.dupont import plot_nfe

if __name__ == "__main__":
    out = next((a for a in sys.argv[1:] if not a.startswith("--")), "results/dupont-nfe")
    config = NFEConfig(**NFEConfig.PAPER) if "--paper" in sys.argv else NFEConfig()
    print(nfe.format_summary(nfe.run(config, out)))
    print("figures:", *plot_nfe(out))
