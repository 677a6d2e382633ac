"""`pyanode sweep CONFIG.toml` (a grid of trials on a local pool or Dask, into one folder) and
`pyanode collect DIR` (the trials under any results folder as one CSV)."""

from __future__ import annotations

import argparse
import sys
from collections import Counter
from pathlib import Path

from pyanode.cli._options import add_options, build


def add_sweep(parser: argparse.ArgumentParser, words: list[str]) -> None:
    from pyanode.experiments.engines import EngineOptions
    from pyanode.experiments.runner import RunOptions

    parser.description = (
        "Expand the [grid] of a sweep config over its [base] spec and train every trial into "
        "OUT/<trial id>/ (spec.toml, history.jsonl, checkpoint.pt, weights.npy, result.json). "
        "Finished trials are skipped and interrupted ones resume, so re-running the same "
        "command completes a sweep. A failed trial (solver failure, diverged loss) is recorded "
        "and the others go on; the exit code is 1 if any trial failed. See docs/sweeps.md."
    )
    parser.epilog = (
        "example: pyanode sweep scripts/sweep_example.toml --out results/sweep --workers 2"
    )
    parser.add_argument("config", type=Path, help="sweep config (TOML with [base] and [grid])")
    parser.add_argument("--out", type=Path, required=True, help="results folder")
    parser.add_argument("--dry-run", action="store_true", help="list the trials and stop")
    parser.add_argument("--csv", type=Path, help="collected table (default: OUT/results.csv)")
    add_options(parser, EngineOptions, prefix="engine.", title="engine")
    add_options(parser, RunOptions, prefix="options.", title="running")
    parser.set_defaults(run=run_sweep)


def run_sweep(args: argparse.Namespace) -> int:
    from pyanode.experiments import runner, sweep
    from pyanode.experiments.collect import collect, write_csv
    from pyanode.experiments.engines import EngineOptions
    from pyanode.experiments.store import trial_id

    config = sweep.load_sweep(args.config)
    engine = build(EngineOptions, args, prefix="engine.").build()
    options = build(runner.RunOptions, args, prefix="options.")
    if args.dry_run:
        specs = config.trials()
        for spec, label in zip(specs, config.labels(), strict=True):
            print(trial_id(spec), label)
        print(f"{len(specs)} trial(s); {engine.describe()}")
        return 0
    try:
        report = sweep.run_sweep(config, args.out, engine=engine, options=options)
    except runner.TrialFailed as err:
        print(f"pyanode sweep: failed: {err}; stored in {args.out / err.trial}", file=sys.stderr)
        return 1
    finally:
        if args.out.is_dir():
            write_csv(collect(args.out), args.csv or args.out / "results.csv")
    print(report.summary())
    return 1 if report.failed else 0


def add_collect(parser: argparse.ArgumentParser, words: list[str]) -> None:
    parser.description = (
        "Write one CSV row per trial folder at or below DIR (a sweep, a reproduction, a "
        "trained model, or a folder of them): trial id, label, status (ok, failed, "
        "interrupted, pending, damaged), folder, the spec's fields and the stored result."
    )
    parser.add_argument("dir", type=Path, help="a results folder")
    parser.add_argument("--csv", type=Path, help="output file (default: DIR/results.csv)")
    parser.set_defaults(run=run_collect)


def run_collect(args: argparse.Namespace) -> int:
    from pyanode.experiments.collect import collect, write_csv

    rows = collect(args.dir)
    if not rows:
        print(f"pyanode collect: no trial folder at or below {args.dir}", file=sys.stderr)
        return 1
    path = write_csv(rows, args.csv or args.dir / "results.csv")
    counts = Counter(row["status"] for row in rows)
    detail = ", ".join(f"{n} {status}" for status, n in sorted(counts.items()))
    print(f"{len(rows)} trial(s) ({detail}) -> {path}")
    return 0
