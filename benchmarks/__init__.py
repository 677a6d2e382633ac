"""Side-by-side speed runs of pyanode against torchdiffeq, torchdyn and diffrax (scripts, not
tests).

Run `python -m benchmarks.run` and `python -m benchmarks.scaling` from the repository root; see
benchmarks/README.md. Importing this package pins XLA to one thread (as torch runs one thread)
unless `XLA_FLAGS` is set: the flags are read when jax starts, so this must come first.
"""

import os

XLA_ONE_THREAD = "--xla_cpu_multi_thread_eigen=false intra_op_parallelism_threads=1"
if not os.environ.get("XLA_FLAGS"):
    os.environ["XLA_FLAGS"] = XLA_ONE_THREAD
