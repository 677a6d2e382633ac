"""One Dupont et al. reproduction as data (`DupontExperiment`: config, plans, summary, figures)
with the `run` / `add_arguments` / `main` written once, and the command-line options built from
an experiment's config dataclass."""

from __future__ import annotations

import argparse
import dataclasses
import importlib
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from pyanode._errors import SpecError
from pyanode.experiments.dupont._common import Plan, run_plans
from pyanode.experiments.dupont._results import CONFIG, read_json, write_json

SUMMARY = "summary.json"

# settings that mean the same in several experiments: name -> (default, --help text)
SHARED_SETTINGS: dict[str, tuple[Any, str]] = {
    "n_inner": (1000, "points in the inner ball"),
    "n_outer": (2000, "points in the outer annulus"),
    "batch_size": (64, "mini-batch size"),
    "lr": (1e-3, "Adam learning rate"),
    "threads": (1, "torch threads (0: torch's default)"),
}


def setting(default: Any, text: str, **metadata: Any) -> Any:
    """A field of a config dataclass: its default and the --help text of its option; metadata
    `type` parses the option where the default's type does not, `shown` replaces the default
    in --help."""
    return dataclasses.field(default=default, metadata={"help": text, **metadata})


def shared_setting(name: str) -> Any:
    """The field of the setting `name` of `SHARED_SETTINGS`."""
    return setting(*SHARED_SETTINGS[name])


@dataclasses.dataclass(frozen=True)
class DupontExperiment:
    """One `pyanode reproduce dupont-*` experiment.

    Arguments:
        name: its `pyanode reproduce` name (and its output folder under `results/`).
        describe: one line for --help.
        config: its frozen config dataclass (defaults in minutes on a CPU; `PAPER`: the
            paper's values where they differ).
        plans: the trials of a config.
        figures: the name of the `pyanode.plots.dupont` function that draws its figures from
            the output folder (imported when drawing: the command line starts without
            matplotlib).
        report: the printed text of what `run` returns.
        summarise: the summary of the trials stored in an output folder, or None: `run` then
            returns the stored result of each trial.
    """

    name: str
    describe: str
    config: type
    plans: Callable[[Any], Sequence[Plan]]
    figures: str
    report: Callable[[dict[str, Any]], str]
    summarise: Callable[[Path], dict[str, Any]] | None = None

    def run(self, config: Any, out: str | Path) -> dict[str, Any]:
        """Train every trial of `config` into `out` (finished ones are kept).

        Returns:
            The summary (also stored as `summary.json`); without `summarise`, the stored
            result of each trial, keyed `<panel>/<model>/seed-<s>`.
        """
        out = Path(out)
        results = run_plans(out, config, self.plans(config))
        summary = self._summary(out)
        return results if summary is None else summary

    def _summary(self, out: Path) -> dict[str, Any] | None:
        """The summary of the trials in `out`, stored as `summary.json` (None without one)."""
        if self.summarise is None:
            return None
        summary = self.summarise(out)
        write_json(out / SUMMARY, summary)
        return summary

    def draw(self, out: str | Path) -> list[Path]:
        """Draw the figures from the results stored in `out`; returns the files written."""
        return getattr(importlib.import_module("pyanode.plots.dupont"), self.figures)(out)

    def add_arguments(self, parser: argparse.ArgumentParser) -> None:
        """The options of `pyanode reproduce <name>` (see `add_config_arguments`)."""
        add_config_arguments(parser, self.config, self.name)

    def main(self, args: argparse.Namespace) -> int:
        """Run (or with --plot-only summarise the stored trials), print the report and draw."""
        start = time.perf_counter()
        if args.plot_only:
            load_config(self.config, args.out)
            summary = self._summary(Path(args.out))
        else:
            summary = self.run(config_from_args(self.config, args), args.out)
        if summary is not None:
            print(self.report(summary))
        files = self.draw(args.out)
        print(f"{time.perf_counter() - start:.0f} s; figures: {', '.join(map(str, files))}")
        return 0

    def script(self, argv: Sequence[str]) -> int:
        """`python scripts/dupont_<...>.py [OUT] [--paper]`: `main` into OUT (default
        `results/<name>`) with the default settings, or the paper's with --paper."""
        out = next((a for a in argv if not a.startswith("--")), str(Path("results", self.name)))
        parser = argparse.ArgumentParser(prog=self.name, description=self.describe)
        self.add_arguments(parser)
        return self.main(parser.parse_args(["--out", out, *(a for a in argv if a == "--paper")]))


# -- command line -----------------------------------------------------------------------------
def _csv(value: str) -> tuple[str, ...]:
    return tuple(part.strip() for part in value.split(",") if part.strip())


def add_config_arguments(parser: argparse.ArgumentParser, cls: type, name: str) -> None:
    """One option per field of the config dataclass `cls` (help from the field's metadata),
    plus --out, --paper and --plot-only."""
    parser.add_argument(
        "--out",
        type=Path,
        default=Path("results", name),
        help=f"folder for results and figures (default: results/{name})",
    )
    parser.add_argument(
        "--paper",
        action="store_true",
        help="use the paper's settings ("
        + ", ".join(f"{k}={v}" for k, v in cls.PAPER.items())
        + "); options given explicitly still override them",
    )
    parser.add_argument(
        "--plot-only", action="store_true", help="redraw the figures from stored results"
    )
    group = parser.add_argument_group("settings")
    for f in dataclasses.fields(cls):
        default = f.default
        flag = "--" + f.name.replace("_", "-")
        shown = ",".join(default) if isinstance(default, tuple) else default
        text = f"{f.metadata.get('help', '')} (default: {f.metadata.get('shown', shown)})"
        if isinstance(default, bool):
            group.add_argument(flag, action=argparse.BooleanOptionalAction, default=None, help=text)
        elif isinstance(default, tuple):
            group.add_argument(flag, type=_csv, default=None, metavar="A,B", help=text)
        else:
            kind = f.metadata.get("type", type(default))
            group.add_argument(flag, type=kind, default=None, help=text)


def config_from_args(cls: type, args: argparse.Namespace) -> Any:
    """The config: defaults (or the paper's settings with --paper), overridden by every option
    given on the command line."""
    values: dict[str, Any] = dict(cls.PAPER) if args.paper else {}
    for f in dataclasses.fields(cls):
        value = getattr(args, f.name, None)
        if value is not None:
            values[f.name] = value
    return cls(**values)


def load_config(cls: type, out: str | Path) -> Any:
    """The config stored by the last run in `out` (for redrawing figures).

    Raises:
        FileNotFoundError: if `out` holds no config.json.
    """
    path = Path(out, CONFIG)
    if not path.exists():
        raise FileNotFoundError(f"{path} is missing: run the experiment into {out} first")
    stored = read_json(path)
    return cls(**{k: tuple(v) if isinstance(v, list) else v for k, v in stored.items()})


def check_config(config: Any, positive: Sequence[str], choices: dict[str, Sequence[str]]) -> None:
    """Raise SpecError naming the field if an integer field is < 1 or a tuple field holds a
    value outside its accepted ones."""
    for name in positive:
        value = getattr(config, name)
        if isinstance(value, bool) or not isinstance(value, int) or value < 1:
            raise SpecError(f"{name} must be an integer >= 1, got {value!r}")
    for name, accepted in choices.items():
        value = getattr(config, name)
        bad = [v for v in value if v not in accepted]
        if bad or not value:
            raise SpecError(
                f"{name}={','.join(value)!r} must be a non-empty subset of: {', '.join(accepted)}"
            )
