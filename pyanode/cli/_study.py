"""`pyanode study NAME`: the solver-accuracy studies (docs/studies.md); options generated from
each study's config dataclass."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from pyanode.cli._options import add_options, build, output_path

# name -> (one line for --help, config class, study function, printed columns); the names are
# those of `pyanode.experiments.studies`, imported when the study runs
STUDIES = {
    "forward": (
        "forward work-precision: error of y(t1) against NFE and time, per solver",
        "ForwardConfig",
        "forward_study",
        ("solver", "rtol", "dt", "nfe_forward", "seconds", "error"),
    ),
    "gradient": (
        "gradient work-precision: gradient error against NFE, time and peak memory, per "
        "gradient method",
        "GradientConfig",
        "gradient_study",
        ("solver", "gradient", "rtol", "dt", "nfe_total", "seconds", "peak_bytes", "error"),
    ),
    "cross-solver": (
        "train with one solver setting, test with the others (heatmap)",
        "CrossSolverConfig",
        "cross_solver_study",
        ("trained_with", "evaluated_with", "test_acc", "gap", "agreement", "nfe_forward"),
    ),
    "batch-coupling": (
        "one adaptive solve for the whole batch against one solve per sample",
        "BatchCouplingConfig",
        "batch_coupling_study",
        ("solver", "rtol", "mode", "nfe_forward", "seconds", "error", "error_max_sample"),
    ),
}


def add_arguments(parser: argparse.ArgumentParser, words: list[str]) -> None:
    parser.description = (
        "Run a solver-accuracy study; its table (CSV), study.json (reference checks, settings) "
        "and figure are written under --out. Errors are relative to a float64 reference whose "
        "convergence is checked on every run."
    )
    studies = parser.add_subparsers(dest="study", metavar="STUDY", required=True)
    for name, (text, config, _, _) in STUDIES.items():
        sub = studies.add_parser(name, help=text, description=text, allow_abbrev=False)
        if words[:1] == [name]:
            _add_study_arguments(sub, name, config)


def _add_study_arguments(parser: argparse.ArgumentParser, name: str, config: str) -> None:
    from pyanode.experiments import studies

    parser.add_argument("--out", type=output_path, required=True, help="output folder")
    parser.add_argument(
        "--figures",
        action=argparse.BooleanOptionalAction,
        default=True,
        help="draw the figure (default: yes)",
    )
    if name == "cross-solver":
        parser.add_argument(
            "--run", dest="source.run", type=Path,
            help="evaluate the model of a finished trial folder instead of training "
            "(default: train one per setting)",
        )  # fmt: skip
    else:
        add_options(parser, studies.ProblemSource, prefix="source.", title="problem")
    add_options(parser, getattr(studies, config), prefix="config.", title="settings")
    parser.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    from pyanode._errors import JuliaUnavailable
    from pyanode.experiments import studies
    from pyanode.experiments.store import check_output

    _, config_name, function, columns = STUDIES[args.study]
    config = build(getattr(studies, config_name), args, prefix="config.")
    check_output(args.out)
    study = getattr(studies, function)
    try:
        if args.study == "cross-solver":
            result = study(config, args.out, run=getattr(args, "source.run"), figures=args.figures)
        else:
            problem = build(studies.ProblemSource, args, prefix="source.").load()
            result = study(problem, config, args.out, figures=args.figures)
    except (studies.ReferenceNotConverged, JuliaUnavailable) as err:
        print(f"pyanode study {args.study}: failed: {err}", file=sys.stderr)
        return 1
    print(studies.text_table(result.rows, columns))
    print(result.meta["julia"])
    print(f"written to {args.out}/: " + ", ".join(p.name for p in result.files))
    return 0
