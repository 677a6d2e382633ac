"""`pyanode collect DIR`: one CSV over the trial folders of a sweep."""

from __future__ import annotations

import argparse
from collections import Counter
from pathlib import Path


def add_parser(sub, name: str) -> None:
    parser = sub.add_parser(
        name,
        help="collect a sweep's trials into one CSV",
        description="Write one CSV row per trial folder under DIR: trial id, grid label, status "
        "(ok, failed, interrupted, pending), the spec's fields and the stored result.",
    )
    parser.add_argument("dir", type=Path, help="the sweep's results folder")
    parser.add_argument("--csv", type=Path, help="output file (default: DIR/results.csv)")
    parser.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    from pyanode.experiments.collect import collect, write_csv

    rows = collect(args.dir)
    path = write_csv(rows, args.csv or args.dir / "results.csv")
    counts = Counter(row["status"] for row in rows)
    detail = ", ".join(f"{n} {status}" for status, n in sorted(counts.items()))
    print(f"{len(rows)} trial(s) ({detail or 'none'}) -> {path}")
    return 0
