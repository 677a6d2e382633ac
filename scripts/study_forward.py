"""Forward work-precision of a NODE trained on three spheres: error of z(T) against NFE and wall
time for every solver (adaptive ones at rtol = atol = 1e-3 ... 1e-8, fixed-step ones at 4 ... 128
steps), against a float64 Dopri5 reference at rtol 1e-12 (checked by halving it, by Tsit5 and by
scipy's DOP853).

The same as `pyanode study forward`, with the same options; --out defaults to
results/studies/forward.

    python scripts/study_forward.py [--out OUT] [OPTIONS]   (--help lists them)
"""

import sys

from pyanode.cli import main

if __name__ == "__main__":
    sys.exit(main(["study", "forward", "--out", "results/studies/forward", *sys.argv[1:]]))
