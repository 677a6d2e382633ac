"""§5.2 and Figs. 13-14 of Dupont et al. (2019): convolutional NODE against ANODE with the same
number of parameters, on sklearn's 8 x 8 digits (built in) or on MNIST / Fashion-MNIST /
CIFAR-10 from a local folder in torchvision's layout.

The same as `pyanode reproduce dupont-images`; `--paper` trains on MNIST (k = 64, p = 5, five
seeds) read from $PYANODE_DATA.

    python scripts/dupont_images.py [OUT] [--paper]
"""

import sys

from pyanode.experiments.dupont import ImagesConfig, images
from pyanode.plots.dupont import plot_images

if __name__ == "__main__":
    out = next((a for a in sys.argv[1:] if not a.startswith("--")), "results/dupont-images")
    config = ImagesConfig(**ImagesConfig.PAPER) if "--paper" in sys.argv else ImagesConfig()
    print(images.format_summary(images.run(config, out)))
    print("figures:", *plot_images(out))
