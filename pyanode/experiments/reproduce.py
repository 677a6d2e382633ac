"""A named reproduction as a description, run by the one runner.

A `Reproduction` says what to train for a config (its trials), how to summarise the stored
trials, how to print the summary and which figures to draw; `reproduce` does the rest the same
way for every one of them: it stores the config, runs the trials as one batch (finished trials
skipped, interrupted ones resumed, `[k/N]` progress with ETA), summarises the stored trials into
`summary.json` (and the experiment's tables), and draws the figures from the stored results
alone. `--plot-only` does the last two without training.

Output folder:

    OUT/config.json     {"experiment": name, "config": the config's fields}
    OUT/trials.json     the batch's trials (ids, keys), see `store`
    OUT/<trial id>/     one trial folder per trial
    OUT/summary.json    the summary of the last run
    OUT/*.png, ...      the experiment's tables and figures
"""

from __future__ import annotations

import dataclasses
import importlib
import logging
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from pyanode._errors import SpecError
from pyanode._validate import check_int
from pyanode.experiments import store
from pyanode.experiments.batch import BatchReport, run_trials
from pyanode.experiments.engines import AbstractEngine
from pyanode.experiments.runner import RunOptions, Trial

log = logging.getLogger("pyanode")

CONFIG = "config.json"
SUMMARY = "summary.json"

Summarise = Callable[[Any, list[store.StoredTrial]], dict[str, Any]]


@dataclasses.dataclass
class Reproduced:
    """What `Reproduction.run` returns: the summary (as stored in summary.json) and the batch's
    report (which trials ran, were skipped or failed)."""

    summary: dict[str, Any]
    report: BatchReport


def results_by_key(config: Any, trials: list[store.StoredTrial]) -> dict[str, Any]:
    """The default summary: each trial's final metrics, keyed by its label."""
    return {store.label_of(t.key): t.result for t in trials}


@dataclasses.dataclass(frozen=True)
class Reproduction:
    """One `pyanode reproduce NAME` experiment.

    Arguments:
        name: its `pyanode reproduce` name (and its default output folder under `results/`).
        config: its frozen config dataclass (fields made with `pyanode.specs.setting`, so that
            the command line's options come from them; `PAPER`: the paper's values where they
            differ from the defaults).
        trials: the trials of a config.
        report: the printed text of the summary.
        summarise: the summary of a config's stored (finished, ok) trials.
        figures: the name of the `pyanode.plots` function that draws the figures from the
            output folder, as `module:function` (imported when drawing: the command line starts
            without matplotlib), or None.
        tables: writes the experiment's own files from (out, config, summary), or None.
    """

    name: str
    config: type
    trials: Callable[[Any], Sequence[Trial]]
    report: Callable[[dict[str, Any]], str]
    summarise: Summarise = results_by_key
    figures: str | None = None
    tables: Callable[[Path, Any, dict[str, Any]], list[Path]] | None = None

    def run(
        self,
        config: Any,
        out: str | Path,
        *,
        options: RunOptions | None = None,
        engine: AbstractEngine | None = None,
    ) -> Reproduced:
        """Train every trial of `config` into `out` (finished ones are kept) and summarise.

        Returns:
            The summary (also stored as summary.json) and the batch's report.

        Raises:
            SpecError: if `out` holds another experiment's results (without
                `options.overwrite`), or a trial folder there is damaged.
        """
        out, options = Path(out), options or RunOptions()
        self._claim(out, config, options.overwrite)
        report = run_trials(self.trials(config), out, engine=engine, options=options)
        return Reproduced(self.summarise_stored(config, out), report)

    def _claim(self, out: Path, config: Any, overwrite: bool) -> None:
        path = out / CONFIG
        if path.exists() and not overwrite:
            try:
                stored = store.read_json(path)
            except (OSError, ValueError) as err:
                message = f"{path} cannot be read ({err}): delete it, or --overwrite"
                raise SpecError(message) from None
            if not isinstance(stored, dict) or stored.get("experiment") != self.name:
                raise SpecError(
                    f"{str(out)!r} holds the results of another experiment "
                    f"({stored.get('experiment') if isinstance(stored, dict) else '?'!r}); "
                    "use another --out, or --overwrite"
                )
        store.write_json(path, {"experiment": self.name, "config": dataclasses.asdict(config)})

    def summarise_stored(self, config: Any, out: str | Path) -> dict[str, Any]:
        """Summarise the finished trials of the last run stored in `out` (the trials of
        `config`): summary.json and the experiment's tables.

        Raises:
            FileNotFoundError: if none of them is stored.
        """
        out = Path(out)
        trials = [t for t in store.read_batch(out) if t.result["status"] == "ok"]
        summary = self.summarise(config, trials)
        store.write_json(out / SUMMARY, summary)
        if self.tables is not None:
            self.tables(out, config, summary)
        return summary

    def draw(self, out: str | Path) -> list[Path]:
        """Draw the figures from the results stored in `out`; returns the files written."""
        if self.figures is None:
            return []
        module, _, function = self.figures.partition(":")
        return getattr(importlib.import_module(module), function)(out)

    def load_config(self, out: str | Path) -> Any:
        """The config stored by the last run in `out` (for redrawing figures).

        Raises:
            FileNotFoundError: if `out` holds no config.json of this experiment.
        """
        path = Path(out, CONFIG)
        if not path.exists():
            raise FileNotFoundError(f"{path} is missing: run the experiment into {out} first")
        stored = store.read_json(path)
        if stored.get("experiment") != self.name:
            raise FileNotFoundError(f"{path} holds experiment {stored.get('experiment')!r}, "
                                    f"not {self.name!r}")  # fmt: skip
        return from_plain(self.config, stored["config"])


def from_plain(cls: type, values: dict[str, Any]) -> Any:
    """A config dataclass from its JSON values (lists back to the tuples of tuple fields)."""
    out = {}
    for f in dataclasses.fields(cls):
        if f.name in values:
            value = values[f.name]
            out[f.name] = tuple(value) if isinstance(f.default, tuple) else value
    return cls(**out)


def reproduce(
    experiment: Reproduction,
    config: Any,
    out: str | Path,
    *,
    plot_only: bool = False,
    figures: bool = True,
    options: RunOptions | None = None,
) -> int:
    """`pyanode reproduce NAME`: run (or with `plot_only` only summarise the stored trials),
    print the summary and the failures, draw the figures.

    Returns:
        The exit code: 0, or 1 if a trial failed or its folder is damaged.
    """
    start = time.perf_counter()
    out = Path(out)
    failed = []
    if plot_only:
        config = experiment.load_config(out)
        summary = experiment.summarise_stored(config, out)
    else:
        done = experiment.run(config, out, options=options)
        summary, failed = done.summary, done.report.failed + list(done.report.damaged)
        if failed:
            print(done.report.summary())
    print(experiment.report(summary))
    files = experiment.draw(out) if figures else []
    shown = ", ".join(map(str, files)) if files else "none"
    print(f"{time.perf_counter() - start:.0f} s; results in {out}/; figures: {shown}")
    return 1 if failed else 0


@dataclasses.dataclass(frozen=True)
class Preset:
    """Named settings of an experiment beyond the paper's (`--preset NAME`): what they are for,
    and the config fields they set (options given on the command line still override them).

    A config class lists its presets in `PRESETS: ClassVar[dict[str, Preset]]`.
    """

    text: str
    values: dict[str, Any]

    def shown(self) -> str:
        return ", ".join(f"{k}={v}" for k, v in self.values.items())


def presets_of(config: type) -> dict[str, Preset]:
    """The named presets of a config class (none for most)."""
    return dict(getattr(config, "PRESETS", {}))


def preset_values(config: type, name: str) -> dict[str, Any]:
    """The fields that the preset `name` of `config` sets.

    Raises:
        SpecError: for an unknown name, listing the known ones.
    """
    presets = presets_of(config)
    if name not in presets:
        known = ", ".join(presets) or "none"
        raise SpecError(f"preset={name!r} is not known; accepted: {known}")
    return dict(presets[name].values)


def check_positive(config: Any, names: Sequence[str]) -> None:
    """Raise SpecError naming the field if one of the integer fields `names` is < 1."""
    for name in names:
        check_int(name, getattr(config, name), low=1, error=SpecError)
