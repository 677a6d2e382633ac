"""Gradient work-precision of a NODE trained on three spheres: relative error of the parameter
gradient of the cross-entropy loss from backprop through the solver, the backsolve adjoint
(seminorm) and the full-norm adjoint, against NFE (forward + backward), wall time and peak
memory; the reference is backprop through float64 Dopri5 at rtol 1e-12.

The same as `pyanode study gradient`, with the same options; --out defaults to
results/studies/gradient.

    python scripts/study_gradient.py [--out OUT] [OPTIONS]   (--help lists them)
"""

import sys

from pyanode.cli import main

if __name__ == "__main__":
    sys.exit(main(["study", "gradient", "--out", "results/studies/gradient", *sys.argv[1:]]))
