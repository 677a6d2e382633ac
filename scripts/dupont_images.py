"""§5.2 and Figs. 13-14 of Dupont et al. (2019): convolutional NODE against ANODE with the same
number of parameters, on sklearn's 8 x 8 digits (built in) or on MNIST / Fashion-MNIST /
CIFAR-10 from a local folder in torchvision's layout.

The same as `pyanode reproduce dupont-images`, with the same options (`--paper` for the paper's
settings).

    python scripts/dupont_images.py [--out OUT] [OPTIONS]   (--help lists them)
"""

import sys

from pyanode.cli import main

if __name__ == "__main__":
    sys.exit(main(["reproduce", "dupont-images", *sys.argv[1:]]))
