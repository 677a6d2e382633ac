"""`pyanode report`: the numbers of the docs, generated from the committed results (and, with
--rerun, the documented commands run again first); --check is the docs freshness test."""

from __future__ import annotations

import argparse
import sys

from pyanode.cli._options import add_options, build


def add_arguments(parser: argparse.ArgumentParser, words: list[str]) -> None:
    from pyanode.experiments.report import ReportOptions

    parser.description = (
        "Rewrite the marked regions (<!-- report:NAME --> ... <!-- /report:NAME -->) of "
        "README.md, docs/*.md and benchmarks/README.md from the results committed under "
        "docs/data/. --check only compares; --rerun first runs every documented command again "
        "(resumable: finished runs and trials are kept) and refreshes docs/data."
    )
    add_options(parser, ReportOptions, prefix="report.")
    parser.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    from pyanode.experiments import report
    from pyanode.experiments.report import ReportOptions

    options = build(ReportOptions, args, prefix="report.")
    root = options.root.resolve()
    if options.check:
        stale = report.check(root)
        for item in stale:
            print(item.diff())
        print(f"{len(stale)} stale region(s)" if stale else "the docs match docs/data")
        return 1 if stale else 0
    failed = []
    if options.rerun or options.dry_run:
        results = options.results or report.default_results(root)
        jobs = report.jobs_named(options.jobs)
        steps = report.plan(jobs, root, results)
        for job, state, seconds in steps:
            print(f"{state:>6}  ~{seconds / 60:4.0f} min  {job.shown(results / job.name)}")
        total = sum(seconds for _, _, seconds in steps)
        print(
            f"{len(steps)} run(s) into {results}/, about {total / 60:.0f} min in all "
            "(from the last runs' wall times on their machine)"
        )
        if options.dry_run:
            return 0
        outcomes = report.run_jobs(jobs, root, results)
        failed = [o for o in outcomes if o.error]
    changed = report.rewrite(root)
    print("rewritten: " + ", ".join(str(p.relative_to(root)) for p in changed) if changed
          else "the docs already match docs/data")  # fmt: skip
    for outcome in failed:
        print(f"FAILED {outcome.job.name}: {outcome.error}", file=sys.stderr)
    return 1 if failed else 0
