"""Figs. 2 and 9 of Dupont et al. (2019): trajectories of the flows learned by NODE, ANODE (in
its augmented space) and ResNet on the identity, g_1d and concentric spheres in d = 1, 2.

The same as `pyanode reproduce dupont-flows`.

    python scripts/dupont_flows.py [OUT] [--paper]
"""

import sys

from pyanode.experiments.dupont import FlowsConfig, flows
from pyanode.plots.dupont import plot_flows

if __name__ == "__main__":
    out = next((a for a in sys.argv[1:] if not a.startswith("--")), "results/dupont-flows")
    config = FlowsConfig(**FlowsConfig.PAPER) if "--paper" in sys.argv else FlowsConfig()
    for key, result in flows.run(config, out).items():
        print(f"{key}: final training MSE {result['train_loss']:.4f}")
    print("figures:", *plot_flows(out))
