"""Forward work-precision of a NODE trained on three spheres: error of z(T) against NFE and wall
time for every solver (adaptive ones at rtol = atol = 1e-3 ... 1e-8, fixed-step ones at 4 ... 128
steps), against a float64 Dopri5 reference at rtol 1e-12 (checked by halving it, by Tsit5 and by
scipy's DOP853).

The same as `pyanode study forward --problem trained-node --out OUT`.

    python scripts/study_forward.py [OUT] [PROBLEM]
"""

import sys

from pyanode.experiments.studies import ForwardConfig, forward_study, load_problem, text_table


def main(out: str = "results/studies/forward", problem: str = "trained-node") -> None:
    result = forward_study(load_problem(problem), ForwardConfig(), out)
    print(
        text_table(
            result.rows, ("backend", "solver", "rtol", "dt", "nfe_forward", "seconds", "error")
        )
    )
    print(result.meta["reference"])
    print(result.meta["julia"])
    print("written:", *result.files)


if __name__ == "__main__":
    main(*sys.argv[1:3])
