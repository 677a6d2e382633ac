"""Table 1 and Figs. 1-2 of "Overcoming Limitations of Neural ODEs" from Python.

The same as `pyanode reproduce table1 --seeds 3`; edit the config to change any setting.

    python scripts/reproduce_table1.py [OUT]
"""

import sys

from pyanode.experiments.table1 import Table1Config, reproduce, text_table

if __name__ == "__main__":
    out = sys.argv[1] if len(sys.argv) > 1 else "results/table1"
    result = reproduce(Table1Config(epochs=5, seeds=3), out)
    print(text_table(result.rows))
    print(f"\n{result.seconds:.0f} s; written to {out}/")
