"""Table 1 and Figures 1-2 of "Overcoming Limitations of Neural ODEs" (§4).

Every net of the survey is trained on three spheres (1024 points, batches of 96, Adam with
lr 1e-3, 5 epochs, Dormand-Prince dp5, gradients by backprop through the solver), with its hidden
width chosen so that it has about 1.3k parameters (within 5%). ReLU everywhere except the
depth-variant nets (Chebyshev, Fourier, Stacked), which use tanh, as the survey found best.
Adaptive depth (§3.2) is an extra row: the paper lists it as a method but has no number for it.

Epochs: 5 epochs of 1024 points in batches of 96 are 55 Adam steps at lr 1e-3, too few for the
~98-99% accuracies of the paper's Table 1 (its ~10-80 s per epoch also suggest far more steps per
epoch than 11 batches). The default keeps the paper's settings; `--epochs 50` (about 3 minutes on
one CPU core) shows the paper's picture: ANODE, IL-NODE, data-controlled and ResNet separate the
classes, vanilla and depth-variant NODEs do not.

Test set: the paper does not say how it tested. Here seed s trains on `three_spheres(n, seed=s)`
and tests on an independent draw of the same size, `three_spheres(n, seed=s + TEST_SEED_OFFSET)`;
the model's initialisation and the batch order use seed s too.

`pyanode reproduce table1` prints the table with the paper's numbers beside ours and writes, under
--out: table1.csv, table1.md, fig1_dataset.{png,pdf}, fig2_decision_boundaries.{png,pdf},
boundaries.npz (the data of Fig. 2) and runs/<kind>/seed-<s>/ (spec, history, result per trial).
"""

from __future__ import annotations

import argparse
import csv
import io
import logging
import math
import os
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from pyanode._errors import SpecError
from pyanode.backends import TorchBackend
from pyanode.data import Dataset, three_spheres
from pyanode.experiments.store import atomic_write, atomic_write_text, write_run
from pyanode.specs import ModelSpec, RunSpec, SolverSpec, TrainSpec
from pyanode.torch import match_width

log = logging.getLogger("pyanode")

describe = (
    "Table 1 and Figs. 1-2 of 'Overcoming Limitations of Neural ODEs': ResNet, NODE, ANODE, "
    "IL-NODE, data-controlled, Chebyshev, Fourier, stacked (and adaptive-depth) nets on three "
    "spheres at ~1.3k parameters each"
)

TEST_SEED_OFFSET = 1000
IN_DIM, N_CLASSES = 2, 3


@dataclass(frozen=True)
class PaperRow:
    """One row of the survey's Table 1 (None where the paper gives no number)."""

    hidden: int | None
    parameters: str | None
    train_acc: float | None
    test_acc: float | None
    seconds_per_epoch: float | None


# Table 1 of the survey, by ModelSpec kind ("~10s." is stored as 10.0)
paper: dict[str, PaperRow] = {
    "resnet": PaperRow(33, "1.3k", 0.987, 0.990, 10.0),
    "node": PaperRow(32, "1.3k", 0.979, 0.984, 27.0),
    "anode": PaperRow(32, "1.3k", 0.988, 0.993, 21.0),
    "il-node": PaperRow(32, "1.3k", 0.992, 0.993, 22.0),
    "data-controlled": PaperRow(32, "1.3k", 0.992, 0.993, 20.0),
    "chebyshev": PaperRow(15, "1.3k", 0.978, 0.974, 42.0),
    "fourier": PaperRow(11, "1.4k", 0.976, 0.977, 67.0),
    "stacked": PaperRow(14, "1.4k", 0.979, 0.980, 80.0),
    "adaptive-depth": PaperRow(None, None, None, None, None),
}


@dataclass(frozen=True)
class Net:
    """A row of the table: the paper's name and the spec (its `hidden` is set by matching)."""

    name: str
    spec: ModelSpec


# the nets in the paper's order; the spec fields other than `hidden` are this experiment's choice
NETS: tuple[Net, ...] = (
    Net("ResNet", ModelSpec(kind="resnet", activation="relu", depth=1)),
    Net("Vanilla NODE", ModelSpec(kind="node", activation="relu")),
    Net("ANODE", ModelSpec(kind="anode", activation="relu", augment_dim=1)),
    Net("IL-NODE", ModelSpec(kind="il-node", activation="relu", augment_dim=1)),
    Net("Data Controlled", ModelSpec(kind="data-controlled", activation="relu")),
    Net("Chebyshev", ModelSpec(kind="chebyshev", activation="tanh", degree=3)),
    Net("Fourier", ModelSpec(kind="fourier", activation="tanh", degree=2)),
    Net("Stacked", ModelSpec(kind="stacked", activation="tanh", n_pieces=4)),
    Net("Adaptive depth", ModelSpec(kind="adaptive-depth", activation="relu")),
)
NET_KINDS = tuple(net.spec.kind for net in NETS)


@dataclass(frozen=True)
class Table1Config:
    """The experiment's settings; the defaults are the paper's.

    Arguments:
        epochs: training epochs per trial.
        seeds: number of seeds (0, 1, ..., seeds - 1); the table gives mean and std over them.
        nets: which rows, by ModelSpec kind (a subset of `NET_KINDS`, kept in the paper's order).
        n_points: points of the training set and of the test set.
        batch_size, lr: Adam's mini-batch size and learning rate.
        budget, tolerance: every net's parameter count must lie within budget * (1 +- tolerance).
        solver, rtol, atol, gradient: the ODE solver of every NODE (see `SolverSpec`).
        grid_size: resolution of the decision-boundary grid of Fig. 2 (per axis).
        threads: torch threads during training (None keeps the process setting); these nets are
            so small that one thread is fastest (up to 15x faster than two on a busy 2-core CPU).
        figures: draw Figs. 1 and 2.
    """

    epochs: int = 5
    seeds: int = 1
    nets: tuple[str, ...] = NET_KINDS
    n_points: int = 1024
    batch_size: int = 96
    lr: float = 1e-3
    budget: int = 1300
    tolerance: float = 0.05
    solver: str = "dp5"
    rtol: float = 1e-3
    atol: float = 1e-3
    gradient: str = "backprop"
    grid_size: int = 150
    threads: int | None = 1
    figures: bool = True

    def __post_init__(self) -> None:
        unknown = [k for k in self.nets if k not in NET_KINDS]
        if unknown or not self.nets:
            raise SpecError(
                f"nets={','.join(self.nets)!r} must be a non-empty subset of: "
                f"{', '.join(NET_KINDS)}"
            )
        for name in ("seeds", "n_points", "grid_size"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                raise SpecError(f"{name} must be an integer >= 1, got {value!r}")
        self.solver_spec()  # validates solver, tolerances and gradient
        self.train_spec(0)  # validates epochs, batch size and learning rate

    def solver_spec(self) -> SolverSpec:
        return SolverSpec(
            solver=self.solver, rtol=self.rtol, atol=self.atol, gradient=self.gradient
        )

    def train_spec(self, seed: int) -> TrainSpec:
        return TrainSpec(
            epochs=self.epochs,
            batch_size=self.batch_size,
            lr=self.lr,
            seed=seed,
            threads=self.threads,
        )

    def selected(self) -> list[Net]:
        return [net for net in NETS if net.spec.kind in self.nets]


@dataclass
class Row:
    """Our result for one net over the seeds, with the paper's row beside it."""

    name: str
    kind: str
    activation: str
    hidden: int
    parameters: int
    train_acc: list[float] = field(default_factory=list)
    test_acc: list[float] = field(default_factory=list)
    seconds_per_epoch: list[float] = field(default_factory=list)
    nfe_forward: list[float] = field(default_factory=list)
    nfe_backward: list[float] = field(default_factory=list)

    @property
    def paper(self) -> PaperRow:
        return paper[self.kind]


@dataclass
class Table1Result:
    """The rows, the files written and the wall time of the whole experiment."""

    rows: list[Row]
    files: list[Path]
    seconds: float


def datasets(n_points: int, seed: int) -> tuple[Dataset, Dataset]:
    """The training set and the independent test set of seed `seed`."""
    return (
        three_spheres(n=n_points, seed=seed),
        three_spheres(n=n_points, seed=seed + TEST_SEED_OFFSET),
    )


def _grid(grid_size: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    xs = np.linspace(-2.0, 2.0, grid_size)
    gx, gy = np.meshgrid(xs, xs)
    return xs, xs, np.stack([gx.ravel(), gy.ravel()], axis=1).astype(np.float32)


def _mean(values: list[float]) -> float:
    return float(np.mean(values)) if values else math.nan


def _std(values: list[float]) -> float:
    return float(np.std(values, ddof=1)) if len(values) > 1 else 0.0


def reproduce(config: Table1Config, out: str | os.PathLike) -> Table1Result:
    """Train every net of `config` for every seed, write the table and figures under `out`.

    Returns:
        The `Table1Result`.

    Raises:
        SpecError: if a net cannot be matched to the parameter budget.
        SolverError, TrainingDiverged: from a trial (the experiment stops there).
    """
    start = time.perf_counter()
    out = Path(out)
    solver = config.solver_spec()
    backend = TorchBackend()
    rows = []
    for net in config.selected():
        width, n_params = match_width(net.spec, IN_DIM, N_CLASSES, config.budget, config.tolerance)
        rows.append(Row(net.name, net.spec.kind, net.spec.activation, width, n_params))
    xs, ys, grid = _grid(config.grid_size)
    boundaries: dict[str, np.ndarray] = {}
    for seed in range(config.seeds):
        train_data, test_data = datasets(config.n_points, seed)
        train = config.train_spec(seed)
        for row in rows:
            spec = next(n.spec for n in NETS if n.spec.kind == row.kind).replace(hidden=row.hidden)
            tic = time.perf_counter()
            fitted = backend.fit(spec, solver, train, train_data, test_data, progress=False)
            history = fitted.history
            last = history[-1]
            row.train_acc.append(last["train_acc"])
            row.test_acc.append(last["test_acc"])
            row.seconds_per_epoch.append(_mean([h["seconds"] for h in history]))
            row.nfe_forward.append(_mean([h["nfe_forward"] for h in history]))
            row.nfe_backward.append(_mean([h["nfe_backward"] for h in history]))
            if seed == 0 and config.figures:
                boundaries[row.kind] = fitted.predict(grid).argmax(axis=1).reshape(len(ys), len(xs))
            run_spec = RunSpec(
                dataset="three-spheres",
                dataset_kwargs={"n": config.n_points, "seed": seed},
                test_fraction=0.0,
                model=spec,
                solver=solver,
                train=train,
            )
            result = {
                "name": row.name,
                "n_parameters": row.parameters,
                "train_acc": last["train_acc"],
                "test_acc": last["test_acc"],
                "seconds_per_epoch": row.seconds_per_epoch[-1],
                "nfe_forward": row.nfe_forward[-1],
                "nfe_backward": row.nfe_backward[-1],
                "test_data": {
                    "dataset": "three-spheres",
                    "n": config.n_points,
                    "seed": seed + TEST_SEED_OFFSET,
                },
            }
            write_run(out / "runs" / row.kind / f"seed-{seed}", run_spec, history, result)
            log.info(
                "table1: %s, seed %d: test acc %.1f%%, %.1f s",
                row.name,
                seed,
                100 * last["test_acc"],
                time.perf_counter() - tic,
            )
    files = [
        atomic_write_text(out / "table1.csv", csv_table(rows)),
        atomic_write_text(out / "table1.md", markdown_table(rows, config) + "\n"),
    ]
    if config.figures:
        files += _figures(rows, boundaries, xs, ys, config.n_points, out)
    return Table1Result(rows, files, time.perf_counter() - start)


def _figures(
    rows: list[Row],
    boundaries: dict[str, np.ndarray],
    xs: np.ndarray,
    ys: np.ndarray,
    n_points: int,
    out: Path,
) -> list[Path]:
    from pyanode.plots.table1 import DecisionBoundary, plot_dataset, plot_decision_boundaries

    train_data, test_data = datasets(n_points, 0)
    arrays = {"xs": xs, "ys": ys, **boundaries}
    files = [atomic_write(out / "boundaries.npz", lambda f: np.savez_compressed(f, **arrays))]
    files += plot_dataset(train_data.x, train_data.y, out / "fig1_dataset")
    panels = [
        DecisionBoundary(row.name, row.kind, xs, ys, boundaries[row.kind], row.test_acc[0])
        for row in rows
    ]
    files += plot_decision_boundaries(
        panels, test_data.x, test_data.y, out / "fig2_decision_boundaries"
    )
    return files


# -- the table ---------------------------------------------------------------------------------
HEADER = (
    "net",
    "width",
    "paper",
    "params",
    "paper",
    "train acc %",
    "paper",
    "test acc %",
    "paper",
    "s/epoch",
    "paper",
    "fwd NFE/batch",
)


def _pm(values: list[float], scale: float = 1.0, digits: int = 1) -> str:
    if not values:
        return "—"
    mean = f"{scale * _mean(values):.{digits}f}"
    return mean if len(values) == 1 else f"{mean} ± {scale * _std(values):.{digits}f}"


def _paper(value: Any, fmt: str) -> str:
    return "—" if value is None else format(value, fmt)


def cells(row: Row) -> list[str]:
    """The printed cells of one row, in the order of `HEADER`."""
    p = row.paper
    ode = row.kind != "resnet"
    return [
        row.name,
        str(row.hidden),
        _paper(p.hidden, "d"),
        str(row.parameters),
        p.parameters or "—",
        _pm(row.train_acc, 100),
        _paper(None if p.train_acc is None else 100 * p.train_acc, ".1f"),
        _pm(row.test_acc, 100),
        _paper(None if p.test_acc is None else 100 * p.test_acc, ".1f"),
        _pm(row.seconds_per_epoch, digits=2),
        "—" if p.seconds_per_epoch is None else f"~{p.seconds_per_epoch:.0f}",
        _pm(row.nfe_forward, digits=1) if ode else "—",
    ]


def text_table(rows: list[Row]) -> str:
    """The table as aligned plain text (what `pyanode reproduce table1` prints)."""
    body = [list(HEADER)] + [cells(r) for r in rows]
    widths = [max(len(line[i]) for line in body) for i in range(len(HEADER))]
    lines = [
        "  ".join(
            c.ljust(w) if i == 0 else c.rjust(w)
            for i, (c, w) in enumerate(zip(line, widths, strict=True))
        )
        for line in body
    ]
    lines.insert(1, "  ".join("-" * w for w in widths))
    return "\n".join(lines)


def markdown_table(rows: list[Row], config: Table1Config | None = None) -> str:
    """The table in Markdown, each 'paper' column right of ours; with `config`, a caption line."""
    lines = [
        "| " + " | ".join(HEADER) + " |",
        "|" + "|".join([":---"] + ["---:"] * (len(HEADER) - 1)) + "|",
    ]
    lines += ["| " + " | ".join(cells(r)) + " |" for r in rows]
    if config is not None:
        seeds = len(rows[0].test_acc) if rows else 0
        lines.insert(
            0,
            f"Three spheres, {config.n_points} training and {config.n_points} test points, "
            f"batch {config.batch_size}, Adam lr {config.lr:g}, {config.epochs} epochs, "
            f"{config.solver} ({config.gradient}), budget {config.budget} ± "
            f"{config.tolerance:.0%} parameters; mean ± std over {seeds} seed(s).\n",
        )
    return "\n".join(lines)


CSV_FIELDS = (
    "net",
    "kind",
    "activation",
    "hidden",
    "paper_hidden",
    "n_parameters",
    "paper_parameters",
    "train_acc_mean",
    "train_acc_std",
    "paper_train_acc",
    "test_acc_mean",
    "test_acc_std",
    "paper_test_acc",
    "seconds_per_epoch_mean",
    "seconds_per_epoch_std",
    "paper_seconds_per_epoch",
    "nfe_forward_mean",
    "nfe_forward_std",
    "nfe_backward_mean",
    "seeds",
)


def csv_table(rows: list[Row]) -> str:
    """The table as CSV with the columns `CSV_FIELDS` (accuracies as fractions, empty = none)."""
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerow(CSV_FIELDS)
    for r in rows:
        p = r.paper
        writer.writerow(
            [
                r.name,
                r.kind,
                r.activation,
                r.hidden,
                p.hidden,
                r.parameters,
                p.parameters,
                _mean(r.train_acc),
                _std(r.train_acc),
                p.train_acc,
                _mean(r.test_acc),
                _std(r.test_acc),
                p.test_acc,
                _mean(r.seconds_per_epoch),
                _std(r.seconds_per_epoch),
                p.seconds_per_epoch,
                _mean(r.nfe_forward),
                _std(r.nfe_forward),
                _mean(r.nfe_backward),
                len(r.test_acc),
            ]
        )
    return buffer.getvalue()


# -- the command line --------------------------------------------------------------------------
def add_arguments(parser: argparse.ArgumentParser) -> None:
    defaults = Table1Config()
    parser.add_argument(
        "--out",
        type=Path,
        default=Path("results/table1"),
        help="output folder (default: %(default)s)",
    )
    parser.add_argument("--epochs", type=int, default=defaults.epochs, help="default: %(default)s")
    parser.add_argument(
        "--seeds", type=int, default=defaults.seeds, help="number of seeds (default: %(default)s)"
    )
    parser.add_argument(
        "--nets",
        default=",".join(NET_KINDS),
        help="comma-separated kinds to train (default: all: %(default)s)",
    )
    parser.add_argument(
        "--n-points", type=int, default=defaults.n_points, help="train and test points each"
    )
    parser.add_argument("--budget", type=int, default=defaults.budget, help="parameters per net")
    parser.add_argument("--tolerance", type=float, default=defaults.tolerance)
    parser.add_argument("--gradient", choices=("backprop", "adjoint"), default=defaults.gradient)
    parser.add_argument("--grid-size", type=int, default=defaults.grid_size, help="Fig. 2 grid")
    parser.add_argument(
        "--threads", type=int, default=defaults.threads, help="torch threads (default: %(default)s)"
    )
    parser.add_argument("--no-figures", action="store_true", help="skip Figs. 1 and 2")


def main(args: argparse.Namespace) -> int:
    config = Table1Config(
        epochs=args.epochs,
        seeds=args.seeds,
        nets=tuple(k.strip() for k in args.nets.split(",") if k.strip()),
        n_points=args.n_points,
        budget=args.budget,
        tolerance=args.tolerance,
        gradient=args.gradient,
        grid_size=args.grid_size,
        threads=args.threads,
        figures=not args.no_figures,
    )
    result = reproduce(config, args.out)
    print(text_table(result.rows))
    print(
        f"\n{len(result.rows)} nets x {config.seeds} seed(s), {config.epochs} epochs: "
        f"{result.seconds:.0f} s wall time; written to {args.out}/"
    )
    return 0
