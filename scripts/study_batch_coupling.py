"""Batch coupling: 64 test points of a NODE trained on three spheres (and any other problem)
solved as one system, where all samples share the steps and the RMS error norm, against one
solve per sample; NFE per sample, time and the batch's and the worst sample's error.

The same as `pyanode study batch-coupling`, with the same options; --out defaults to
results/studies/batch-coupling.

    python scripts/study_batch_coupling.py [--out OUT] [OPTIONS]   (--help lists them)
"""

import sys

from pyanode.cli import main

if __name__ == "__main__":
    out = "results/studies/batch-coupling"
    sys.exit(main(["study", "batch-coupling", "--out", out, *sys.argv[1:]]))
