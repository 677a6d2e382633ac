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
and tests on an independent draw of the same size, `three_spheres(n, seed=s + 1000)` (the
spec's `test_kwargs`); the model's initialisation and the batch order use seed s too.

`pyanode reproduce table1` prints the table with the paper's numbers beside ours and writes, under
--out: table1.csv, table1.md, fig1_dataset.{png,pdf}, fig2_decision_boundaries.{png,pdf},
boundaries.npz (the data of Fig. 2) and one trial folder per net and seed (see `store`), each
with the net's decision classes on the grid of Fig. 2 in its arrays.npz.
"""

from __future__ import annotations

import csv
import functools
import inspect
import io
import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, ClassVar

import numpy as np

from pyanode._errors import SpecError
from pyanode._names import SOLVERS, gradients_of
from pyanode._validate import check_subset
from pyanode.backends import TorchFitted
from pyanode.data import Dataset, three_spheres
from pyanode.experiments.reproduce import Preset, Reproduction, check_positive
from pyanode.experiments.runner import TEST_SEED_OFFSET, Record, Trial
from pyanode.experiments.store import StoredTrial, atomic_write, atomic_write_text, read_batch
from pyanode.specs import ModelSpec, RunSpec, SolverSpec, TrainSpec, setting
from pyanode.torch import match_width

IN_DIM, N_CLASSES = 2, 3
_match_width = functools.lru_cache(match_width)  # builds models to count: once per process
GRID_EXTENT = 2.0  # Fig. 2 covers [-2, 2]^2
_THREE_SPHERES = inspect.signature(three_spheres).parameters  # the geometry the trials use


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
        threads: torch threads per trial; these nets are so small that one thread is fastest
            (up to 15x faster than two on a busy 2-core CPU).
    """

    PAPER: ClassVar[dict[str, Any]] = {}  # the defaults are the paper's
    PRESETS: ClassVar[dict[str, Preset]] = {
        "paper-timing": Preset(
            "epochs of 1024 iterations of batches of 96, as the paper's times per epoch imply "
            "(docs/fidelity.md item 4); the test set an independent draw of the same size",
            {"n_points": 96 * 1024, "batch_size": 96, "epochs": 5},
        ),
    }

    epochs: int = setting(5, "training epochs")
    seeds: int = setting(1, "seeds 0..n-1")
    nets: tuple[str, ...] = setting(NET_KINDS, "which nets, by model kind")
    n_points: int = setting(1024, "training and test points each")
    batch_size: int = setting(96, "mini-batch size")
    lr: float = setting(1e-3, "Adam learning rate")
    budget: int = setting(1300, "parameters per net")
    tolerance: float = setting(0.05, "relative tolerance of the budget")
    solver: str = setting("dp5", "ODE solver", choices=tuple(SOLVERS))
    rtol: float = setting(1e-3, "relative tolerance")
    atol: float = setting(1e-3, "absolute tolerance")
    gradient: str = setting("backprop", "gradient method", choices=gradients_of("torch"))
    grid_size: int = setting(150, "points per axis of Fig. 2's grid")
    threads: int = setting(1, "torch threads per trial")

    def __post_init__(self) -> None:
        check_subset("nets", self.nets, NET_KINDS, error=SpecError)
        check_positive(self, ("seeds", "n_points", "grid_size", "threads"))
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


def grid_points(grid_size: int) -> tuple[np.ndarray, np.ndarray]:
    """The axis coordinates (G,) and the points (G * G, 2) of Fig. 2's grid, row by row."""
    xs = np.linspace(-GRID_EXTENT, GRID_EXTENT, grid_size)
    gx, gy = np.meshgrid(xs, xs)
    return xs, np.stack([gx.ravel(), gy.ravel()], axis=1).astype(np.float32)


def boundary_arrays(
    fitted: TorchFitted, train: Dataset, test: Dataset | None, *, grid_size: int
) -> dict[str, np.ndarray]:
    """The class the trained net predicts at each point of Fig. 2's grid (`boundary`, (G, G))."""
    xs, points = grid_points(grid_size)
    return {"boundary": fitted.predict(points).argmax(axis=1).reshape(len(xs), len(xs))}


def trials(config: Table1Config) -> list[Trial]:
    """Every selected net (its width matched to the budget) x seed; each keeps its decision
    classes on Fig. 2's grid.

    Raises:
        SpecError: if a net cannot be matched to the parameter budget.
    """
    record = Record(arrays=functools.partial(boundary_arrays, grid_size=config.grid_size))
    out = []
    for net in config.selected():
        width, _ = _match_width(net.spec, IN_DIM, N_CLASSES, config.budget, config.tolerance)
        model = net.spec.replace(hidden=width)
        for seed in range(config.seeds):
            spec = RunSpec(
                dataset="three-spheres",
                dataset_kwargs={"n": config.n_points, "seed": seed},
                test_fraction=0.0,
                test_kwargs={"seed": seed + TEST_SEED_OFFSET},
                model=model,
                solver=config.solver_spec(),
                train=config.train_spec(seed),
            )
            out.append(Trial(spec, {"net": net.spec.kind, "seed": seed}, record))
    return out


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


def summarise(config: Table1Config, stored: list[StoredTrial]) -> dict[str, Any]:
    """One row per net (its seeds' final accuracies, seconds per epoch, NFE per batch), in the
    paper's order, and the settings of the caption."""
    rows = []
    for net in config.selected():
        runs = sorted((t for t in stored if t.key["net"] == net.spec.kind),
                      key=lambda t: t.key["seed"])  # fmt: skip
        if not runs:
            continue
        spec = runs[0].spec.model
        row = Row(net.name, spec.kind, spec.activation, spec.hidden,
                  runs[0].result["n_parameters"])  # fmt: skip
        for t in runs:
            row.train_acc.append(t.result["train_acc"])
            row.test_acc.append(t.result["test_acc"])
            row.seconds_per_epoch.append(_mean([h["seconds"] for h in t.history]))
            row.nfe_forward.append(_mean([h["nfe_forward"] for h in t.history]))
            row.nfe_backward.append(_mean([h["nfe_backward"] for h in t.history]))
        rows.append(row)
    figure2 = {t.key["net"]: boundary_regions(t.arrays["boundary"], config.grid_size)
               for t in stored if t.key["seed"] == 0}  # fmt: skip
    return {"rows": [vars(r) for r in rows], "caption": caption(config, rows), "figure2": figure2}


def boundary_regions(classes: np.ndarray, grid_size: int) -> dict[str, Any]:
    """What one panel of Fig. 2 shows, measured on its grid of predicted classes.

    `leaks`: a region predicted as one of the disks (classes 0, 1) reaches from inside the
    annulus (radius < its inner radius) to outside it (radius > its outer radius) through
    4-connected grid points: the net carries a disk's points through the annulus.
    `disks_correct`: the share of the grid points in the two disks predicted as their own
    disk; `annulus_correct`: the share of those in the annulus band predicted as the annulus
    (class 2); `outside_correct`: the same outside the annulus.
    """
    inner, outer, offset, disk_radius = (_THREE_SPHERES[k].default for k in (
        "annulus_inner", "annulus_outer", "disk_offset", "disk_radius"))  # fmt: skip
    xs, _ = grid_points(grid_size)
    gx, gy = np.meshgrid(xs, xs)
    radius = np.hypot(gx, gy)
    in_disk = [np.hypot(gx - centre, gy) <= disk_radius for centre in (-offset, offset)]
    disk = classes != N_CLASSES - 1
    reached = disk & (radius < inner)
    while True:  # grow the disks' regions from inside the annulus, neighbour by neighbour
        grown = reached.copy()
        grown[1:] |= reached[:-1]
        grown[:-1] |= reached[1:]
        grown[:, 1:] |= reached[:, :-1]
        grown[:, :-1] |= reached[:, 1:]
        grown &= disk
        if np.array_equal(grown, reached):
            break
        reached = grown
    band, outside = (radius >= inner) & (radius <= outer), radius > outer
    return {
        "leaks": bool((reached & outside).any()),
        "disks_correct": float(
            np.mean(
                np.concatenate([classes[where] == label for label, where in enumerate(in_disk)])
            )
        ),  # fmt: skip
        "annulus_correct": float(np.mean(~disk[band])),
        "outside_correct": float(np.mean(~disk[outside])),
    }


def rows_of(summary: dict[str, Any]) -> list[Row]:
    return [Row(**r) for r in summary["rows"]]


def report(summary: dict[str, Any]) -> str:
    """The table as printed by `pyanode reproduce table1`, with its caption."""
    return text_table(rows_of(summary)) + "\n\n" + summary["caption"]


def write_tables(out: Path, config: Table1Config, summary: dict[str, Any]) -> list[Path]:
    """table1.csv and table1.md under `out`."""
    rows = rows_of(summary)
    return [
        atomic_write_text(out / "table1.csv", csv_table(rows)),
        atomic_write_text(
            out / "table1.md", summary["caption"] + "\n\n" + markdown_table(rows) + "\n"
        ),  # fmt: skip
    ]


def draw_figures(out: str | Path) -> list[Path]:
    """Figs. 1 and 2 from the trials stored in `out` (seed 0 of each net), and boundaries.npz,
    the data of Fig. 2."""
    from pyanode.plots.table1 import DecisionBoundary, plot_dataset, plot_decision_boundaries

    out = Path(out)
    config = TABLE1.load_config(out)
    stored = [t for t in read_batch(out, seed=0) if t.result["status"] == "ok"]
    by_kind = {t.key["net"]: t for t in stored}
    xs, _ = grid_points(config.grid_size)
    arrays = {"xs": xs, "ys": xs, **{k: t.arrays["boundary"] for k, t in by_kind.items()}}
    files = [atomic_write(out / "boundaries.npz", lambda f: np.savez_compressed(f, **arrays))]
    train = three_spheres(n=config.n_points, seed=0)
    test = three_spheres(n=config.n_points, seed=TEST_SEED_OFFSET)
    files += plot_dataset(train.x, train.y, out / "fig1_dataset")
    panels = [
        DecisionBoundary(
            net.name,
            net.spec.kind,
            xs,
            xs,
            by_kind[net.spec.kind].arrays["boundary"],
            by_kind[net.spec.kind].result["test_acc"],
        )  # fmt: skip
        for net in config.selected()
        if net.spec.kind in by_kind
    ]
    files += plot_decision_boundaries(panels, test.x, test.y, out / "fig2_decision_boundaries")
    return files


def _mean(values: list[float]) -> float:
    return float(np.mean(values)) if values else math.nan


def _std(values: list[float]) -> float:
    return float(np.std(values, ddof=1)) if len(values) > 1 else 0.0


def caption(config: Table1Config, rows: list[Row]) -> str:
    """What the table was trained with."""
    seeds = len(rows[0].test_acc) if rows else 0
    return (
        f"Three spheres, {config.n_points} training and {config.n_points} test points, "
        f"batch {config.batch_size}, Adam lr {config.lr:g}, {config.epochs} epochs, "
        f"{config.solver} ({config.gradient}), budget {config.budget} ± "
        f"{config.tolerance:.0%} parameters; mean ± std over {seeds} seed(s)."
    )


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


def markdown_table(rows: list[Row]) -> str:
    """The table in Markdown, each 'paper' column right of ours."""
    lines = [
        "| " + " | ".join(HEADER) + " |",
        "|" + "|".join([":---"] + ["---:"] * (len(HEADER) - 1)) + "|",
    ]
    lines += ["| " + " | ".join(cells(r)) + " |" for r in rows]
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


TABLE1 = Reproduction(
    name="table1",
    config=Table1Config,
    trials=trials,
    report=report,
    summarise=summarise,
    figures="pyanode.experiments.table1:draw_figures",
    tables=write_tables,
)
