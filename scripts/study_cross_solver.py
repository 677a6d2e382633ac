"""Train with one solver, test with another: a NODE trained on three spheres with Euler at
dt = 1 (a one-block ResNet), Euler at dt = 0.25, RK4 at dt = 0.5 and Dopri5 at rtol 1e-3, each
evaluated with all four and with the exact flow (float64 Dopri5 at rtol 1e-10). Does a net
trained with a coarse solver rely on that solver's error?

The same as `pyanode study cross-solver`, with the same options; --out defaults to
results/studies/cross-solver.

    python scripts/study_cross_solver.py [--out OUT] [OPTIONS]   (--help lists them)
"""

import sys

from pyanode.cli import main

if __name__ == "__main__":
    out = "results/studies/cross-solver"
    sys.exit(main(["study", "cross-solver", "--out", out, *sys.argv[1:]]))
