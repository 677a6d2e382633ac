"""Trials and what is made of them.

- `runner`: the one trial runner (`Trial`, `Record`, `run_trial`, `run`), and its checkpoints
  (the trainer's position and RNG states, for bit-identical resume);
- `batch`: many trials into one folder on an engine (`run_trials`), failures kept apart;
- `store`: the one on-disk trial format, written whole or not at all, read with ids checked,
  and `collect`: any results folder as one CSV;
- `engines`: where a batch runs (this process, a local pool, Dask);
- `sweep`: a grid of trials from a TOML config;
- `reproduce`: a named reproduction as a description of its trials, summary and figures;
- `table1`, `dupont`: the papers' reproductions; `studies`: the solver-accuracy studies;
- `report` and `report_tables`: the numbers of the docs, generated from the committed results.

The public names are re-exported by `pyanode` itself; this package's `__init__` imports
nothing, so reading stored results and the command line's help never load torch.
"""
