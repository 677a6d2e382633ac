"""Gradient work-precision of a NODE trained on three spheres: relative error of the parameter
gradient of the cross-entropy loss from backprop through the solver, the backsolve adjoint
(seminorm) and the full-norm adjoint, against NFE (forward + backward), wall time and peak
memory; the reference is backprop through float64 Dopri5 at rtol 1e-12.

The same as `pyanode study gradient --problem trained-node --out OUT`.

    python scripts/study_gradient.py [OUT] [PROBLEM]
"""

import sys

from pyanode.experiments.studies import GradientConfig, gradient_study, load_problem, text_table


def main(out: str = "results/studies/gradient", problem: str = "trained-node") -> None:
    result = gradient_study(load_problem(problem), GradientConfig(), out)
    columns = (
        "backend",
        "solver",
        "gradient",
        "rtol",
        "dt",
        "nfe_forward",
        "nfe_backward",
        "seconds",
        "peak_bytes",
        "error",
    )
    print(text_table(result.rows, columns))
    print(result.meta["reference"])
    print(result.meta["julia"])
    print("written:", *result.files)


if __name__ == "__main__":
    main(*sys.argv[1:3])
