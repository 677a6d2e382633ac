"""The paper claims that docs/fidelity.md reproduces, each stated over seeds with a margin
(tests/claims.py), at a smaller scale than the studies of scripts/fidelity/.

Each test trains small models for seconds to a minute on one core, so all are slow.
"""

from __future__ import annotations

import math

import numpy as np
import pytest
from claims import SEEDS, Bound, check

from pyanode.backends import TorchBackend
from pyanode.data import concentric_spheres, slice_removed_split, three_spheres
from pyanode.specs import ModelSpec, SolverSpec, TrainSpec
from pyanode.torch import match_width

SOLVER = SolverSpec(solver="dp5", rtol=1e-3, atol=1e-3)


def _fit(spec, data, test, *, epochs, batch_size, lr=1e-3, seed=0, loss="auto"):
    train = TrainSpec(epochs=epochs, batch_size=batch_size, lr=lr, seed=seed, loss=loss, threads=1)
    return TorchBackend().fit(spec, SOLVER, train, data, test, progress=False)


def _table1_net(kind: str, **fields) -> ModelSpec:
    """A Table 1 net at its matched width (1.3k parameters within 5 %)."""
    spec = ModelSpec(kind=kind, **fields)
    return spec.replace(hidden=match_width(spec, 2, 3, 1300, 0.05)[0])


# -- Dupont et al. Fig. 11c ---------------------------------------------------------------------
SLICE = (0.0, math.pi / 5)
SLICE_SEEDS = tuple(range(8))  # the gap is bimodal: over 20 seeds at 50 epochs, 9 runs have it
SLICE_EPOCHS = 10  # the gap runs have it by epoch 10 (docs/fidelity.md item 3)
# seeds 0-7 at 10 epochs on this machine: 4 gap runs (validation 1.7-2.0 MSE, 58-90x their
# training MSE, channel at 12-20 degrees); the others' validation within 1.1x their training
# MSE; ANODE validation 0.006-0.017
SLICE_BOUNDS = (
    Bound("node_gap_runs", ">=", 2),
    Bound("node_gap_runs_with_channel_outside_slice", "==", 0),
    Bound("node_other_val_over_train_max", "<=", 3.0),
    Bound("anode_val_max", "<", 0.05),
)


def slice_statistics(node: list[dict[str, float]], anode: list[float]) -> dict[str, float]:
    """A NODE run has the gap when its validation MSE is over 10x its training MSE."""
    gaps = [r for r in node if r["val"] > 10 * r["train"]]
    others = [r["val"] / r["train"] for r in node if r["val"] <= 10 * r["train"]]
    lo, hi = np.rad2deg(SLICE)
    return {
        "node_gap_runs": len(gaps),
        "node_gap_runs_with_channel_outside_slice": sum(not lo <= r["channel"] <= hi for r in gaps),
        "node_other_val_over_train_max": max(others, default=0.0),
        "anode_val_max": max(anode),
    }


@pytest.mark.slow
def test_node_generalisation_gap_comes_from_a_flow_through_the_removed_slice():
    """Dupont et al. Fig. 11c: with the points of angle [0, pi/5] held out, NODEs show "a large
    generalization gap ... presumably because the flow moves through the gaps in the training
    set", ANODEs "achieve near zero validation loss". The gap is bimodal: a NODE run has it
    when its flow carries the inner disc out through the removed slice (the angle of the lowest
    prediction over the annulus lies in the slice), and only then."""
    full = concentric_spheres(dim=2, n_inner=1000, n_outer=2000, task="regression", seed=0)
    train, validation = slice_removed_split(full, angle_range=SLICE)
    angles = np.arange(360) + 0.5
    rr, aa = np.meshgrid(np.linspace(1.0, 1.5, 11), np.deg2rad(angles), indexing="ij")
    annulus = np.stack([rr * np.cos(aa), rr * np.sin(aa)], axis=-1).reshape(-1, 2)
    node = []
    for seed in SLICE_SEEDS:
        fitted = _fit(ModelSpec(kind="node"), train, validation, epochs=SLICE_EPOCHS,
                      batch_size=64, seed=seed, loss="mse")  # fmt: skip
        lowest = fitted.predict(annulus)[:, 0].reshape(rr.shape).min(axis=0)
        last = fitted.history[-1]
        node.append({"train": last["train_loss"], "val": last["test_loss"],
                     "channel": float(angles[np.argmin(lowest)])})  # fmt: skip
    anode = []
    for seed in SEEDS:
        fitted = _fit(ModelSpec(kind="anode", augment_dim=5), train, validation,
                      epochs=SLICE_EPOCHS, batch_size=64, seed=seed, loss="mse")  # fmt: skip
        anode.append(fitted.history[-1]["test_loss"])
    check(slice_statistics(node, anode), SLICE_BOUNDS)


# -- Survey Table 1: the depth-variant nets -----------------------------------------------------
CHEBYSHEV_EPOCHS = 150
# seeds 0-2 (scripts/fidelity/depth_variant.py): 99.2 +- 0.7 % after 150 epochs, 87.1 +- 5.2
# after 50; the paper 97.4
CHEBYSHEV_BOUNDS = (
    Bound("test_acc_median", ">=", 0.965),
    Bound("test_acc_min", ">=", 0.95),
    Bound("gain_from_epoch_50_min", ">=", 0.03),
)


@pytest.mark.slow
def test_chebyshev_net_reaches_the_papers_accuracy_when_trained_longer():
    """Survey Table 1: the Chebyshev net (width 15, 1.3k parameters, tanh) has 97.4 % test
    accuracy. At Table 1's settings it underfits after 50 epochs of 11 batches (the gap of
    issue 17) and reaches the paper's accuracy after 150: the net is slow to train, not unable
    to fit. Only the training set is evaluated each epoch (these nets underfit: training and
    test accuracy agree); the test set once, at the end."""
    spec = _table1_net("chebyshev", activation="tanh", degree=3)
    assert spec.hidden == 15
    accuracy, gain = [], []
    for seed in SEEDS:
        data, test = three_spheres(n=1024, seed=seed), three_spheres(n=1024, seed=seed + 1000)
        fitted = _fit(spec, data, None, epochs=CHEBYSHEV_EPOCHS, batch_size=96, seed=seed)
        accuracy.append(float((fitted.predict(test.x).argmax(axis=1) == test.y).mean()))
        history = fitted.history
        gain.append(history[-1]["train_acc"] - history[49]["train_acc"])
    statistics = {
        "test_acc_median": float(np.median(accuracy)),
        "test_acc_min": min(accuracy),
        "gain_from_epoch_50_min": min(gain),
    }
    check(statistics, CHEBYSHEV_BOUNDS)


# -- Survey Table 1: what an epoch was ----------------------------------------------------------
PAPER_TEST_ACC = {"node": 0.984, "anode": 0.993}
PAPER_TIMING_POINTS = 96 * 1024  # `pyanode reproduce table1 --preset paper-timing`
# Read literally (5 epochs, both nets), seeds 0-8: 23-92 %, group medians 45 / 61 / 46 %; the
# best of a group is no claim (one seed's ANODE reaches 92 %). One epoch of 1024 batches,
# NODE, seeds 0-8: 93.2-99.8 % (0.8, 3.2, -1.1 | 0.9, 2.3, -0.5 | 5.2, -1.4, 3.7 points below
# the paper; group medians 0.8 / 0.9 / 3.7): the claim is on the median, and every seed only
# has to clear 90 % (a last-bit change in the solver moves a seed by points). ANODE 100 %, not
# tested: the NODE is the harder.
TIMING_BOUNDS = (
    Bound("literal_test_acc_median", "<", 0.8),
    Bound("node_one_epoch_below_paper_median", "<=", 0.05),
    Bound("node_one_epoch_test_acc_min", ">=", 0.9),
)


def table1_epoch_statistics(seeds) -> dict[str, float]:
    """The statistics of `TIMING_BOUNDS` on `seeds`: Table 1's nets read literally (5 epochs
    of 11 batches) and the NODE after one epoch of 1024 batches."""
    literal, below = [], []
    for seed in seeds:
        data, test = three_spheres(n=1024, seed=seed), three_spheres(n=1024, seed=seed + 1000)
        for kind in PAPER_TEST_ACC:
            spec = _table1_net(kind, augment_dim=1 if kind == "anode" else 0)
            fitted = _fit(spec, data, test, epochs=5, batch_size=96, seed=seed)
            literal.append(fitted.history[-1]["test_acc"])
        many = three_spheres(n=PAPER_TIMING_POINTS, seed=seed)
        fitted = _fit(_table1_net("node"), many, test, epochs=1, batch_size=96, seed=seed)
        below.append(PAPER_TEST_ACC["node"] - fitted.history[-1]["test_acc"])
    return {
        "literal_test_acc_median": float(np.median(literal)),
        "node_one_epoch_below_paper_median": float(np.median(below)),
        "node_one_epoch_test_acc_min": PAPER_TEST_ACC["node"] - max(below),
    }


@pytest.mark.slow
def test_table1_needs_epochs_of_about_a_thousand_iterations():
    """Survey Table 1: 98.4 % (NODE) and 99.3 % (ANODE) test accuracy after "5 epochs" of
    "1024 points in batches of 96". Read literally (11 batches per epoch, 55 Adam steps) they
    stay far below; the paper's times imply ~1000 iterations per epoch (docs/fidelity.md
    item 4), and a single epoch of 1024 batches of 96 (a fifth of the paper's training at that
    reading) already brings the NODE to within a few points of the paper's accuracy (median
    of the seeds within 5 points, every seed above 90 %; read literally, a median below 80 %)."""
    check(table1_epoch_statistics(SEEDS), TIMING_BOUNDS)
