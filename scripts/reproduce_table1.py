"""Table 1 and Figs. 1-2 of "Overcoming Limitations of Neural ODEs": every net of the
survey on three spheres at ~1.3k parameters (add `--seeds 3 --epochs 50` for the
converged table of docs/experiments.md).

The same as `pyanode reproduce table1`, with the same options.

    python scripts/reproduce_table1.py [--out OUT] [OPTIONS]   (--help lists them)
"""

import sys

from pyanode.cli import main

if __name__ == "__main__":
    sys.exit(main(["reproduce", "table1", *sys.argv[1:]]))
