"""§5.2 and Figs. 13-14 of Dupont et al. (2019): convolutional NODE against ANODE with the same
number of parameters, on sklearn's 8 x 8 digits (built in) or on MNIST / Fashion-MNIST /
CIFAR-10 from a local folder in torchvision's layout.

The same as `pyanode reproduce dupont-images`; `--paper` trains on MNIST (k = 64, p = 5, five
seeds) read from $PYANODE_DATA.

    python scripts/dupont_images.py [OUT] [--paper]
"""

import sys

from pyanode.experiments.dupont import images

if __name__ == "__main__":
    sys.exit(images.EXPERIMENT.script(sys.argv[1:]))
