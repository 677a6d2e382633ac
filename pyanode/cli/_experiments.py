"""The named experiments: `pyanode reproduce NAME` (one paper table or figure set, end to end)
and `pyanode study NAME` (the solver-accuracy studies, docs/studies.md).

Every reproduction is a `pyanode.experiments.reproduce.Reproduction` and every study a function of
`pyanode.experiments.studies`; their options are generated from their config dataclasses, and
their modules are imported only when they run (or their --help is asked for).
"""

from __future__ import annotations

import argparse
import importlib
import sys
from pathlib import Path

from pyanode.cli._options import add_commands, add_options, build, given, output_path

# name -> (`module:ATTRIBUTE` of its Reproduction, one line for --help)
REPRODUCTIONS = {
    "table1": (
        "pyanode.experiments.table1:TABLE1",
        "Table 1 and Figs. 1-2 of 'Overcoming Limitations of Neural ODEs': ResNet, NODE, ANODE, "
        "IL-NODE, data-controlled, Chebyshev, Fourier, stacked (and adaptive-depth) nets on "
        "three spheres at ~1.3k parameters each",
    ),
    "dupont-1d": (
        "pyanode.experiments.dupont.curves:DUPONT_1D",
        "Dupont et al. Figs. 5 and 8: loss curves of NODE, ANODE and ResNet on g_1d and on "
        "concentric spheres in d = 1 and d = 2 (mean +- std over seeds)",
    ),
    "dupont-flows": (
        "pyanode.experiments.dupont.flows:DUPONT_FLOWS",
        "Dupont et al. Figs. 2 and 9: trajectories of the flows learned by NODE, ANODE (in its "
        "augmented space) and ResNet on the identity, g_1d and concentric spheres (d = 1, 2)",
    ),
    "dupont-features": (
        "pyanode.experiments.dupont.flows:DUPONT_FEATURES",
        "Dupont et al. Figs. 6 and 10: the features of NODE and ANODE at several iterations of "
        "training on concentric spheres (d = 2) and on a separable control set",
    ),
    "dupont-nfe": (
        "pyanode.experiments.dupont.curves:DUPONT_NFE",
        "Dupont et al. Figs. 7 and 11b: forward NFE per iteration of NODE and ANODE trained on "
        "concentric spheres (d = 2), mean +- std over seeds",
    ),
    "dupont-generalisation": (
        "pyanode.experiments.dupont.generalisation:DUPONT_GENERALISATION",
        "Dupont et al. Fig. 11a/c: the predictions of NODE and ANODE over the input plane, and "
        "their validation loss on a slice-removed split of concentric spheres (d = 2)",
    ),
    "dupont-images": (
        "pyanode.experiments.dupont.images:DUPONT_IMAGES",
        "Dupont et al. §5.2, Figs. 13-14: convolutional NODE vs ANODE at matched parameter "
        "counts on digits (built in), MNIST, Fashion-MNIST or CIFAR-10 (local files): loss and "
        "NFE curves",
    ),
}


def add_reproduce(parser: argparse.ArgumentParser, words: list[str]) -> None:
    parser.description = (
        "Reproduce one of the papers' tables or figure sets into --out: every trial is stored "
        "as it finishes, so running the same command again skips the finished trials and "
        "resumes an interrupted one. Run `pyanode reproduce NAME --help` for its options."
    )
    helps = {name: text for name, (_, text) in REPRODUCTIONS.items()}
    add_commands(parser, "experiment", "NAME", helps, words, add_experiment_arguments)


def reproduction(name: str):
    """The `Reproduction` of `name` (its module imported now)."""
    module, _, attribute = REPRODUCTIONS[name][0].partition(":")
    return getattr(importlib.import_module(module), attribute)


def add_experiment_arguments(parser: argparse.ArgumentParser, name: str) -> None:
    """--out, --paper, --plot-only, --figures, the run options and one option per field of
    the config of the reproduction `name`."""
    from pyanode.experiments.runner import RunOptions

    experiment = reproduction(name)
    parser.add_argument(
        "--out",
        type=output_path,
        default=Path("results", experiment.name),
        help=f"folder for results and figures (default: results/{experiment.name})",
    )
    from pyanode.experiments.reproduce import presets_of

    paper, presets = experiment.config.PAPER, presets_of(experiment.config)
    named = parser.add_mutually_exclusive_group() if paper and presets else parser
    if paper:
        shown = ", ".join(f"{k}={v}" for k, v in paper.items())
        named.add_argument(
            "--paper",
            action="store_true",
            help=f"use the paper's settings ({shown}); options given explicitly still override",
        )
    if presets:
        listed = "; ".join(f"{name}: {p.text} ({p.shown()})" for name, p in presets.items())
        named.add_argument(
            "--preset",
            choices=tuple(presets),
            help=f"named settings: {listed}; options given explicitly still override",
        )
    parser.add_argument(
        "--plot-only", action="store_true", help="summarise and redraw from stored results"
    )
    parser.add_argument(
        "--figures",
        action=argparse.BooleanOptionalAction,
        default=True,
        help="draw the figures (default: yes)",
    )
    add_options(parser, RunOptions, prefix="options.", title="running")
    add_options(parser, experiment.config, prefix="config.", title="settings")
    parser.set_defaults(run=lambda args: run_reproduce(args, experiment))


def config_from_args(cls: type, args: argparse.Namespace):
    """The config: defaults (or the paper's settings with --paper, or a --preset's),
    overridden by every option given on the command line."""
    from pyanode.experiments.reproduce import preset_values

    values = dict(cls.PAPER) if getattr(args, "paper", False) else {}
    if getattr(args, "preset", None):
        values = preset_values(cls, args.preset)
    return cls(**{**values, **given(args, cls, prefix="config.")})


def run_reproduce(args: argparse.Namespace, experiment) -> int:
    from pyanode.experiments.reproduce import reproduce
    from pyanode.experiments.runner import RunOptions
    from pyanode.experiments.store import check_output

    config = None if args.plot_only else config_from_args(experiment.config, args)
    options = build(RunOptions, args, prefix="options.")
    check_output(args.out)
    return reproduce(
        experiment,
        config,
        args.out,
        plot_only=args.plot_only,
        figures=args.figures,
        options=options,
    )


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


def add_study(parser: argparse.ArgumentParser, words: list[str]) -> None:
    parser.description = (
        "Run a solver-accuracy study; its table (CSV), study.json (reference checks, settings) "
        "and figure are written under --out. Errors are relative to a float64 reference whose "
        "convergence is checked on every run."
    )
    helps = {name: text for name, (text, _, _, _) in STUDIES.items()}
    add_commands(parser, "study", "STUDY", helps, words, _add_study_arguments)


def _add_study_arguments(parser: argparse.ArgumentParser, name: str) -> None:
    from pyanode.experiments import studies

    config = STUDIES[name][1]
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
    parser.set_defaults(run=run_study)


def run_study(args: argparse.Namespace) -> int:
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
