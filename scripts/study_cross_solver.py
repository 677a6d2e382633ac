"""Train with one solver, test with another: a NODE trained on three spheres with Euler at
dt = 1 (a one-block ResNet), Euler at dt = 0.25, RK4 at dt = 0.5 and Dopri5 at rtol 1e-3, each
evaluated with all four and with the exact flow (float64 Dopri5 at rtol 1e-10). Does a net
trained with a coarse solver rely on that solver's error?

The same as `pyanode study cross-solver --out OUT`.

    python scripts/study_cross_solver.py [OUT]
"""

import sys

from pyanode.experiments.studies import CrossSolverConfig, cross_solver_study, text_table


def main(out: str = "results/studies/cross-solver") -> None:
    result = cross_solver_study(CrossSolverConfig(), out)
    columns = (
        "backend",
        "trained_with",
        "evaluated_with",
        "test_acc",
        "gap",
        "agreement",
        "nfe_forward",
    )
    print(text_table(result.rows, columns))
    print(result.meta["julia"])
    print("written:", *result.files)


if __name__ == "__main__":
    main(*sys.argv[1:2])
