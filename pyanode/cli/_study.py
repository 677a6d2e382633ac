"""`pyanode study NAME`: the solver-accuracy studies (docs/studies.md)."""

from __future__ import annotations

import argparse
import ast
import sys
from pathlib import Path
from typing import Any

from pyanode._errors import JuliaUnavailable, SpecError


def add_parser(sub, name: str) -> None:
    from pyanode.experiments.studies import GRADIENT_METHODS, PROBLEMS, STUDIES

    parser = sub.add_parser(
        name,
        help="solver-accuracy studies (work-precision, gradients, cross-solver, batch coupling)",
        description="Run a solver-accuracy study; its table (CSV), study.json (reference checks, "
        "settings) and figure are written under --out. Errors are relative to a float64 "
        "reference whose convergence is checked on every run.",
    )
    studies = parser.add_subparsers(dest="study", metavar="STUDY", required=True)
    for study, text in STUDIES.items():
        p = studies.add_parser(study, help=text, description=text)
        p.add_argument("--out", type=Path, required=True, help="output folder")
        p.add_argument("--no-figures", action="store_true", help="write the tables only")
        p.add_argument(
            "--julia",
            choices=("auto", "off", "require"),
            help="rows from the Julia backend too: when usable (auto, the default), never, or "
            "fail without it",
        )
        if study != "cross-solver":
            source = p.add_mutually_exclusive_group()
            source.add_argument(
                "--problem", choices=tuple(PROBLEMS), help="named problem (default: trained-node)"
            )
            source.add_argument(
                "--run", dest="run_dir", type=Path, help="a stored run folder to study instead"
            )
            p.add_argument(
                "--problem-option",
                "-P",
                action="append",
                default=[],
                metavar="KEY=VALUE",
                help="keyword argument of the problem, e.g. -P batch=64 -P epochs=5",
            )
            p.add_argument("--solvers", nargs="+", help="solver names (default: all that apply)")
            p.add_argument("--tolerances", nargs="+", type=float, help="rtol = atol values")
            p.add_argument("--dtype", choices=("float32", "float64"), default="float64")
            p.add_argument("--repeats", type=int, help="solves per setting (fastest time)")
            p.add_argument("--reference-rtol", type=float, help="default: 1e-12")
        if study in ("forward", "gradient"):
            p.add_argument("--steps", nargs="+", type=int, help="steps of the fixed-step solvers")
        if study == "gradient":
            p.add_argument("--gradients", nargs="+", choices=tuple(GRADIENT_METHODS))
        if study == "batch-coupling":
            p.add_argument("--samples", type=int, help="first samples of the batch (default 64)")
        if study == "cross-solver":
            p.add_argument(
                "--settings",
                nargs="+",
                help="training settings SOLVER:TOL or SOLVER:dt=STEP "
                "(default: euler:dt=1 euler:dt=0.25 rk4:dt=0.5 dp5:0.001)",
            )
            p.add_argument("--eval-settings", nargs="+", help="default: the training settings")
            p.add_argument(
                "--run", dest="run_dir", type=Path, help="evaluate a stored run instead of training"
            )
            p.add_argument("--epochs", type=int, help="training epochs per model (default 10)")
            p.add_argument("--activation", help="activation of the vector field (default tanh)")
        p.set_defaults(run_study=study)
    parser.set_defaults(run=run)


def parse_options(items: list[str]) -> dict[str, Any]:
    """`["batch=64", "activation=relu"]` -> `{"batch": 64, "activation": "relu"}`.

    Raises:
        SpecError: for an item without `=`.
    """
    out: dict[str, Any] = {}
    for item in items:
        key, sep, text = item.partition("=")
        if not sep or not key:
            raise SpecError(f"--problem-option {item!r} must be KEY=VALUE, e.g. batch=64")
        try:
            out[key.replace("-", "_")] = ast.literal_eval(text)
        except (ValueError, SyntaxError):
            out[key.replace("-", "_")] = text
    return out


def _given(args: argparse.Namespace, **names: str) -> dict[str, Any]:
    """The config fields whose command-line options were given (tuples for lists)."""
    out = {}
    for option, field in names.items():
        value = getattr(args, option, None)
        if value is not None:
            out[field] = tuple(value) if isinstance(value, list) else value
    return out


def _problem(args: argparse.Namespace):
    from pyanode.experiments.studies import load_problem, problem_from_run

    options = parse_options(args.problem_option)
    if args.run_dir is not None:
        return problem_from_run(args.run_dir, **options)
    return load_problem(args.problem or "trained-node", **options)


def run(args: argparse.Namespace) -> int:
    from pyanode.experiments import studies as st
    from pyanode.experiments.studies import text_table

    grid = _given(args, solvers="solvers", tolerances="tolerances", steps="steps")
    common = _given(
        args, dtype="dtype", repeats="repeats", reference_rtol="reference_rtol", julia="julia"
    )
    figures = not args.no_figures
    try:
        if args.run_study == "forward":
            config = st.ForwardConfig(**grid, **common)
            result = st.forward_study(_problem(args), config, args.out, figures=figures)
            columns = ("solver", "rtol", "dt", "nfe_forward", "seconds", "error")
        elif args.run_study == "gradient":
            config = st.GradientConfig(**grid, **common, **_given(args, gradients="gradients"))
            result = st.gradient_study(_problem(args), config, args.out, figures=figures)
            columns = (
                "solver",
                "gradient",
                "rtol",
                "dt",
                "nfe_total",
                "seconds",
                "peak_bytes",
                "error",
            )
        elif args.run_study == "batch-coupling":
            config = st.BatchCouplingConfig(**grid, **common, **_given(args, samples="samples"))
            result = st.batch_coupling_study(_problem(args), config, args.out, figures=figures)
            columns = (
                "solver",
                "rtol",
                "mode",
                "nfe_forward",
                "seconds",
                "error",
                "error_max_sample",
            )
        else:
            config = st.CrossSolverConfig(
                **_given(
                    args,
                    settings="train_settings",
                    eval_settings="eval_settings",
                    epochs="epochs",
                    activation="activation",
                    julia="julia",
                )
            )
            result = st.cross_solver_study(config, args.out, run=args.run_dir, figures=figures)
            columns = (
                "trained_with",
                "evaluated_with",
                "test_acc",
                "gap",
                "agreement",
                "nfe_forward",
            )
    except (st.ReferenceNotConverged, JuliaUnavailable) as err:
        print(f"pyanode study {args.run_study}: failed: {err}", file=sys.stderr)
        return 1
    print(text_table(result.rows, columns))
    print(result.meta["julia"])
    print(f"written to {args.out}/: " + ", ".join(p.name for p in result.files))
    return 0
