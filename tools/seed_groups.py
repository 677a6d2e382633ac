"""Evaluate the claims of the tests that bound a learned quantity on seed groups 0-2, 3-5, 6-8.

Each such test states its claim over seeds 0-2 (tests/claims.py): a statistic of per-seed values
(a median, or the worst seed where a theorem bounds every seed) against a bound. This script
trains seeds 0-8 once per test, computes the statistics of every group through the tests' own
functions, and writes one row per statistic, group and run with the value and the bound
(docs/data/seed_groups.json, rendered into docs/reproducibility.md).

Two stand-ins for another CPU's rounding: `--threads 2` (BLAS splits some sums differently;
on this machine it leaves these small trainings bit-identical) and `--nudge`, which moves every
initial weight by one float step, up or down at random, when its optimizer is made: the kind of
last-bit difference another CPU's kernels make in the first step, which training amplifies.

Also measured: the torch half of tests/test_julia_conformance.py's claim (no Julia here), and
the unchanged solver-error and memory bounds of tests/test_studies.py, which are not on a
learned quantity but are evaluated on a briefly trained field whose weights move with the CPU:
on the `trained-node` problem of each seed (the tests' settings, copied), the worst seed of
each group.

Usage: python tools/seed_groups.py [--threads N] [--nudge] [--only NAME ...] [--out FILE]
(about 2 minutes of one core per run). The JSON keeps the runs of other thread counts
already in the file.
"""

from __future__ import annotations

import argparse
import contextlib
import dataclasses
import json
import os
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

import torch

ROOT = Path(__file__).resolve().parent.parent
sys.path[:0] = [str(ROOT / "tests"), str(ROOT)]
os.environ.setdefault("PYANODE_DISABLE_JULIA", "1")

from claims import SEED_GROUPS, Bound  # noqa: E402
from reproducibility import cpu_name, seed_group_table  # noqa: E402

ALL_SEEDS = tuple(s for group in SEED_GROUPS for s in group)

Statistics = Callable[[tuple[int, ...]], dict[str, float]]


def _by_group(trials, statistics) -> Statistics:
    """Statistics of the trials (seeds 0-8 of one experiment) whose seed is in the group."""
    return lambda group: statistics([t for t in trials if t.key["seed"] in group])


def training(out: Path) -> tuple[Statistics, tuple[Bound, ...]]:
    import test_training as t

    results = {s: t.fit_anode_on_spheres(s, out / f"seed-{s}") for s in ALL_SEEDS}
    return (lambda g: t.anode_statistics([results[s] for s in g])), t.ANODE_BOUNDS


def reflection(out: Path) -> tuple[Statistics, tuple[Bound, ...]]:
    import test_proposition1 as t

    return t.reflection_statistics, t.REFLECTION_BOUNDS


def adaptive_depth(out: Path) -> tuple[Statistics, tuple[Bound, ...]]:
    import test_proposition1 as t

    return t.adaptive_statistics, t.ADAPTIVE_BOUNDS


def g1d(out: Path) -> tuple[Statistics, tuple[Bound, ...]]:
    import test_dupont as t

    from pyanode.experiments.dupont import read_trials
    from pyanode.experiments.dupont.curves import DUPONT_1D

    threads = torch.get_num_threads()
    DUPONT_1D.run(dataclasses.replace(t.G1D, seeds=len(ALL_SEEDS), threads=threads), out)
    return _by_group(read_trials(out), t.g1d_statistics), t.G1D_BOUNDS


def nfe(out: Path) -> tuple[Statistics, tuple[Bound, ...]]:
    import test_dupont as t

    from pyanode.experiments.dupont import read_trials
    from pyanode.experiments.dupont.curves import DUPONT_NFE

    config = dataclasses.replace(
        t.NFE_CONFIG, seeds=len(ALL_SEEDS), threads=torch.get_num_threads()
    )
    DUPONT_NFE.run(config, out)
    floor = t.spheres_1d_floor(config)
    return _by_group(read_trials(out), lambda trials: t.nfe_statistics(trials, floor)), t.NFE_BOUNDS


def digits(out: Path) -> tuple[Statistics, tuple[Bound, ...]]:
    import test_dupont_images as t

    from pyanode.experiments.dupont import read_trials
    from pyanode.experiments.dupont.images import DUPONT_IMAGES

    threads = torch.get_num_threads()
    DUPONT_IMAGES.run(
        dataclasses.replace(t.DIGITS_CONFIG, seeds=len(ALL_SEEDS), threads=threads), out
    )
    return _by_group(read_trials(out), t.digits_statistics), t.DIGITS_BOUNDS


def table1_epoch(out: Path) -> tuple[Statistics, tuple[Bound, ...]]:
    import test_fidelity as t

    return t.table1_epoch_statistics, t.TIMING_BOUNDS


STUDY_BOUNDS = (
    Bound("rk4_error_ratio_min", ">", 50),
    Bound("dp5_backprop_error_1e-9_max", "<", 1e-8),
    Bound("backprop_over_fullnorm_peak_min", ">", 1),
    Bound("fullnorm_peak_spread_max", "<", 1.1),
    Bound("seminorm_adjoint_peak_max", "<", 2 << 20),
    Bound("rk4_peak_ratio_min", ">", 2),
    Bound("rk4_peak_ratio_max", "<", 4),
)


def studies(out: Path) -> tuple[Statistics, tuple[Bound, ...]]:
    """tests/test_studies.py's forward and gradient bounds, with the tests' settings, on the
    `trained-node` problem of each seed; per group the worst seed."""
    from pyanode.experiments.studies import (
        ForwardConfig,
        GradientConfig,
        forward_study,
        gradient_study,
        load_problem,
    )

    forward = ForwardConfig(
        solvers=("dp5", "rk4"), tolerances=(1e-3, 1e-6), steps=(4, 16), repeats=1
    )
    gradient = GradientConfig(
        solvers=("dp5", "rk4"), tolerances=(1e-3, 1e-6, 1e-9), steps=(8, 32), repeats=1
    )
    per_seed = {}
    for seed in ALL_SEEDS:
        problem = load_problem(
            "trained-node", kind="il-node", augment_dim=1, hidden=8, epochs=1, n=96, batch=16,
            seed=seed,
        )  # fmt: skip
        rk4 = [r for r in forward_study(problem, forward).rows if r["solver"] == "rk4"]
        rows = gradient_study(problem, gradient).rows

        def pick(solver, method, rows=rows):
            return [r for r in rows if r["solver"] == solver and r["gradient"] == method]

        backprop, adjoint = pick("dp5", "backprop"), pick("dp5", "adjoint")
        full_norm = pick("dp5", "adjoint-fullnorm")
        coarse, fine = pick("rk4", "backprop")
        per_seed[seed] = {
            "rk4_error_ratio": rk4[0]["error"] / rk4[1]["error"],
            "dp5_backprop_error_1e-9": backprop[2]["error"],
            "backprop_over_fullnorm_peak": min(
                b["peak_bytes"] / a["peak_bytes"] for a, b in zip(full_norm, backprop, strict=True)
            ),
            "fullnorm_peak_spread": max(r["peak_bytes"] for r in full_norm)
            / min(r["peak_bytes"] for r in full_norm),
            "seminorm_adjoint_peak": max(r["peak_bytes"] for r in adjoint),
            "rk4_peak_ratio": fine["peak_bytes"] / coarse["peak_bytes"],
        }

    def worst(group):
        rows = [per_seed[s] for s in group]
        return {
            "rk4_error_ratio_min": min(r["rk4_error_ratio"] for r in rows),
            "dp5_backprop_error_1e-9_max": max(r["dp5_backprop_error_1e-9"] for r in rows),
            "backprop_over_fullnorm_peak_min": min(r["backprop_over_fullnorm_peak"] for r in rows),
            "fullnorm_peak_spread_max": max(r["fullnorm_peak_spread"] for r in rows),
            "seminorm_adjoint_peak_max": max(r["seminorm_adjoint_peak"] for r in rows),
            "rk4_peak_ratio_min": min(r["rk4_peak_ratio"] for r in rows),
            "rk4_peak_ratio_max": max(r["rk4_peak_ratio"] for r in rows),
        }

    return worst, STUDY_BOUNDS


def julia_torch_half(out: Path) -> tuple[Statistics, tuple[Bound, ...]]:
    """test_short_training_reaches_similar_accuracy on the torch backend alone."""
    import test_julia_conformance as t

    bound = t.SHORT_TRAINING_BOUNDS[0]  # torch_acc_median
    return (lambda g: t.short_training_statistics(g, backends=("torch",))), (bound,)


Setup = Callable[[Path], tuple[Statistics, tuple[Bound, ...]]]
CLAIMS: dict[str, tuple[str, Setup]] = {  # name: (the test, its statistics on any seed group)
    "training": ("test_training.py::test_anode_fits_concentric_spheres_in_three_epochs", training),
    "reflection": (
        "test_proposition1.py::"
        "test_data_controlled_node_learns_the_reflection_and_vanilla_node_cannot",
        reflection,
    ),
    "adaptive-depth": (
        "test_proposition1.py::test_adaptive_depth_node_learns_the_reflection",
        adaptive_depth,
    ),
    "g1d": ("test_dupont.py::test_node_cannot_fit_g1d_while_anode_and_resnet_do", g1d),
    "nfe": (
        "test_dupont.py::test_anode_needs_fewer_function_evaluations_on_concentric_spheres",
        nfe,
    ),
    "digits": (
        "test_dupont_images.py::test_digits_trains_one_epoch_and_its_loss_decreases",
        digits,
    ),
    "table1-epoch": (
        "test_fidelity.py::test_table1_needs_epochs_of_about_a_thousand_iterations",
        table1_epoch,
    ),
    "studies": (
        "test_studies.py::test_forward_study_writes_tables_orders_and_figure and "
        "::test_gradient_study_memory_nfe_and_error (unchanged; worst seed of each group)",
        studies,
    ),
    "julia-torch-half": (
        "test_julia_conformance.py::test_short_training_reaches_similar_accuracy (torch half)",
        julia_torch_half,
    ),
}


@contextlib.contextmanager
def nudged_initial_weights():
    """While open, every `torch.optim.Adam` first moves the weights it is given one float step
    up or down (at random, seeded): a last-bit change of the initial weights."""
    adam = torch.optim.Adam
    generator = torch.Generator().manual_seed(0)

    class NudgedAdam(adam):
        def __init__(self, params, *args, **kwargs):
            params = list(params)
            with torch.no_grad():
                for p in params:
                    up = torch.rand(p.shape, generator=generator) < 0.5
                    target = torch.where(up, torch.inf, -torch.inf).to(p.dtype)
                    p.copy_(torch.nextafter(p, target))
            super().__init__(params, *args, **kwargs)

    torch.optim.Adam = NudgedAdam
    try:
        yield
    finally:
        torch.optim.Adam = adam


def run_label(threads: int, nudge: bool) -> str:
    return f"{threads} thr." + (", nudged" if nudge else "")


def evaluate(names: list[str], threads: int, nudge: bool) -> list[dict]:
    torch.set_num_threads(threads)
    rows = []
    for name in names:
        test, setup = CLAIMS[name]
        start = time.process_time()
        nudged = nudged_initial_weights() if nudge else contextlib.nullcontext()
        with tempfile.TemporaryDirectory() as tmp, nudged:
            statistics, bounds = setup(Path(tmp))
            values = [statistics(group) for group in SEED_GROUPS]
        print(f"{name}: {time.process_time() - start:.0f} s CPU", file=sys.stderr, flush=True)
        for bound in bounds:
            for group, value in zip(SEED_GROUPS, values, strict=True):
                v = value[bound.statistic]
                rows.append(
                    {
                        "claim": name,
                        "test": test,
                        "statistic": bound.statistic,
                        "bound": f"{bound.op} {bound.limit:g}",
                        "seeds": f"{group[0]}-{group[-1]}",
                        "run": run_label(threads, nudge),
                        "value": v,
                        "holds": bound.holds(v),
                    }
                )
    return rows


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--threads", type=int, default=1, help="torch threads (default: 1)")
    parser.add_argument("--nudge", action="store_true", help="move initial weights one ulp")
    parser.add_argument("--only", nargs="+", choices=list(CLAIMS), help="these claims only")
    parser.add_argument("--out", type=Path, default=ROOT / "docs" / "data" / "seed_groups.json")
    args = parser.parse_args(argv)
    names = args.only or list(CLAIMS)
    rows = evaluate(names, args.threads, args.nudge)
    if args.out.exists():  # keep what this run did not redo
        old = json.loads(args.out.read_text())["rows"]
        redone = {(r["claim"], r["run"]) for r in rows}
        rows = [r for r in old if (r["claim"], r["run"]) not in redone] + rows
    order, runs = list(CLAIMS), [run_label(1, False), run_label(2, False), run_label(1, True)]
    rows.sort(key=lambda r: (order.index(r["claim"]), runs.index(r["run"])))
    args.out.parent.mkdir(parents=True, exist_ok=True)
    data = {"meta": {"torch": torch.__version__, "cpu": cpu_name()}, "rows": rows}
    args.out.write_text(json.dumps(data, indent=1) + "\n")
    print(seed_group_table(data))
    failed = [r for r in rows if not r["holds"]]
    for r in failed:
        print(f"FAILS: {r['claim']} {r['statistic']} {r['bound']} on seeds {r['seeds']} "
              f"({r['run']}): {r['value']:.4g}")  # fmt: skip
    return 1 if failed else 0


if __name__ == "__main__":
    raise SystemExit(main())
