"""benchmarks/odeint.py: the odeint row runs both libraries on the same call (a smoke run; the
timings themselves are the benchmark's, never a test's)."""

import torch

from benchmarks import odeint


def test_odeint_row_runs_both_libraries_on_the_same_work():
    results = odeint.run(batch=8, hidden=4, rtol=1e-3, atol=1e-3, seed=0,
                         device=torch.device("cpu"), rounds=1, reps=1)  # fmt: skip
    assert {(r.library, r.mode) for r in results} == {
        (lib, mode) for lib in odeint.LIBRARIES for mode in odeint.MODES
    }
    nfe = {(r.library, r.mode): r.nfe for r in results}
    for lib in odeint.LIBRARIES:  # the adjoints' counts include their backward solves
        assert 0 < nfe[lib, "forward"] == nfe[lib, "backprop"] < nfe[lib, "adjoint"]
    rows = odeint.table(results).splitlines()
    assert len(rows) == 2 + 6 and rows[2].startswith("| odeint forward | pyanode |")
