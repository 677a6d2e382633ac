"""Batch coupling: 64 test points of a NODE trained on three spheres (and any other problem)
solved as one system, where all samples share the steps and the RMS error norm, against one
solve per sample; NFE per sample, time and the batch's and the worst sample's error.

The same as `pyanode study batch-coupling --problem trained-node --out OUT`.

    python scripts/study_batch_coupling.py [OUT] [PROBLEM]
"""

import sys

from pyanode.experiments.studies import (
    BatchCouplingConfig,
    batch_coupling_study,
    load_problem,
    text_table,
)


def main(out: str = "results/studies/batch-coupling", problem: str = "trained-node") -> None:
    result = batch_coupling_study(load_problem(problem), BatchCouplingConfig(), out)
    columns = (
        "backend",
        "solver",
        "rtol",
        "mode",
        "nfe_forward",
        "nfe_max",
        "seconds",
        "error",
        "error_max_sample",
    )
    print(text_table(result.rows, columns))
    print(result.meta["julia"])
    print("written:", *result.files)


if __name__ == "__main__":
    main(*sys.argv[1:3])
