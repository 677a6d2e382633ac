"""Side-by-side speed runs of pyanode against torchdiffeq and torchdyn (scripts, not tests).

Run `python -m benchmarks.run` from the repository root; see benchmarks/README.md.
"""
