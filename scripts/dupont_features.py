"""Figs. 6 and 10 of Dupont et al. (2019): the features of NODE and ANODE at several iterations
of training on concentric spheres (d = 2) and on a separable control set.

The same as `pyanode reproduce dupont-features`.

    python scripts/dupont_features.py [OUT] [--paper]
"""

import sys

from pyanode.experiments.dupont import FeaturesConfig, features
from pyanode.plots.dupont import plot_features

if __name__ == "__main__":
    out = next((a for a in sys.argv[1:] if not a.startswith("--")), "results/dupont-features")
    config = FeaturesConfig(**FeaturesConfig.PAPER) if "--paper" in sys.argv else FeaturesConfig()
    for key, result in features.run(config, out).items():
        print(f"{key}: final training MSE {result['train_loss']:.4f}")
    print("figures:", *plot_features(out))
