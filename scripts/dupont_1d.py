"""Figs. 5 and 8 of Dupont et al. (2019): loss curves of NODE, ANODE and ResNet on g_1d and on
concentric spheres in d = 1, 2, mean +- std over seeds.

The same as `pyanode reproduce dupont-1d` (add `--paper` for 20 seeds and 50 epochs).

    python scripts/dupont_1d.py [OUT] [--paper]
"""

import sys

from pyanode.experiments.dupont import Toy1dConfig, toy1d
from pyanode.plots.dupont import plot_losses

if __name__ == "__main__":
    out = next((a for a in sys.argv[1:] if not a.startswith("--")), "results/dupont-1d")
    config = Toy1dConfig(**Toy1dConfig.PAPER) if "--paper" in sys.argv else Toy1dConfig()
    print(toy1d.format_summary(toy1d.run(config, out)))
    print("figures:", *plot_losses(out))
