"""`pyanode sweep CONFIG.toml`: a grid of trials on a local pool or Dask, into one folder."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from pyanode.experiments.engines import ENGINES
from pyanode.experiments.trial import FAILURE_POLICIES


def add_parser(sub, name: str) -> None:
    parser = sub.add_parser(
        name,
        help="run a grid of trials from a sweep config",
        description="Expand the [grid] of a sweep config over its [base] spec and train every "
        "trial into OUT/<trial id>/ (spec.toml, history.jsonl, checkpoint.pt, result.json). "
        "Finished trials are skipped and interrupted ones resume, so re-running the same command "
        "completes a sweep. A failed trial (solver failure, diverged loss) is recorded and the "
        "others go on; the exit code is 1 if any trial failed. See docs/sweeps.md.",
        epilog="example: pyanode sweep scripts/sweep_example.toml --out results/sweep --workers 2",
    )
    parser.add_argument("config", type=Path, help="sweep config (TOML with [base] and [grid])")
    parser.add_argument("--out", type=Path, required=True, help="results folder")
    parser.add_argument(
        "--engine",
        choices=ENGINES,
        default="local",
        help="local: a process pool (default); dask: Dask distributed; inline: this process",
    )
    parser.add_argument("--workers", type=int, help="processes (default: CPUs // threads)")
    parser.add_argument("--threads", type=int, default=1, help="torch threads per trial (1)")
    parser.add_argument(
        "--scheduler", help="Dask scheduler address, e.g. tcp://host:8786 (default: a LocalCluster)"
    )
    parser.add_argument(
        "--on-failure",
        choices=FAILURE_POLICIES,
        default="record",
        help="record: mark a failed trial and go on (default); raise: stop at the first failure",
    )
    parser.add_argument(
        "--checkpoint-every", type=int, metavar="K", help="also checkpoint every K batches"
    )
    parser.add_argument("--retry-failed", action="store_true", help="run failed trials again")
    parser.add_argument("--dry-run", action="store_true", help="list the trials and stop")
    parser.add_argument("--csv", type=Path, help="collected table (default: OUT/results.csv)")
    parser.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    from pyanode.experiments.collect import collect, write_csv
    from pyanode.experiments.engines import get_engine
    from pyanode.experiments.sweep import TrialFailed, load_sweep, run_sweep
    from pyanode.experiments.trial import trial_id

    sweep = load_sweep(args.config)
    engine = get_engine(
        args.engine, workers=args.workers, threads=args.threads, scheduler=args.scheduler
    )
    if args.dry_run:
        specs = sweep.trials()
        for spec, label in zip(specs, sweep.labels(), strict=True):
            print(trial_id(spec), label)
        print(f"{len(specs)} trial(s); {engine.describe()}")
        return 0
    try:
        report = run_sweep(
            sweep,
            args.out,
            engine=engine,
            on_failure=args.on_failure,
            checkpoint_every=args.checkpoint_every,
            retry_failed=args.retry_failed,
        )
    except TrialFailed as err:
        print(f"pyanode sweep: failed: {err}; stored in {args.out / err.trial}", file=sys.stderr)
        return 1
    finally:
        if args.out.is_dir():
            write_csv(collect(args.out), args.csv or args.out / "results.csv")
    print(report.summary())
    return 1 if report.failed else 0
