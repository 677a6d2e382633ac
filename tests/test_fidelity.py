"""The paper claims that docs/fidelity.md reproduces, each stated over seeds with a margin.

Each test trains small models (tens of seconds to a few minutes on one core), so all are slow;
the numbers they guard come from scripts/fidelity/ (see docs/fidelity.md).
"""

from __future__ import annotations

import math

import numpy as np
import pytest

from pyanode.backends import TorchBackend
from pyanode.data import concentric_spheres, slice_removed_split, three_spheres
from pyanode.specs import ModelSpec, SolverSpec, TrainSpec
from pyanode.torch import match_width

SOLVER = SolverSpec(solver="dp5", rtol=1e-3, atol=1e-3)


def _fit(spec, data, test, *, epochs, batch_size, lr=1e-3, seed=0, loss="auto"):
    train = TrainSpec(epochs=epochs, batch_size=batch_size, lr=lr, seed=seed, loss=loss, threads=1)
    return TorchBackend().fit(spec, SOLVER, train, data, test, progress=False)


@pytest.mark.slow
def test_node_generalisation_gap_comes_from_a_flow_through_the_removed_slice():
    """Dupont et al. Fig. 11c: with the points of angle [0, pi/5] held out, NODEs show "a large
    generalization gap ... presumably because the flow moves through the gaps in the training
    set", ANODEs "achieve near zero validation loss".

    Over 20 seeds at 50 epochs (scripts/fidelity/slice_gap.py) 9 NODE runs carry the inner disc
    out through the slice (validation MSE 1.15 against training 0.0007), the 11 others through
    a thin channel elsewhere (validation 0.005). Here, 12 seeds at 20 epochs: at least 2 runs
    have the gap (P(fewer) < 1 % at the measured rate), every gap run's channel lies in the
    slice, every other run generalises, and every ANODE does.
    """
    full = concentric_spheres(dim=2, n_inner=1000, n_outer=2000, task="regression", seed=0)
    train, validation = slice_removed_split(full, angle_range=(0.0, math.pi / 5))
    angles = np.deg2rad(np.arange(360) + 0.5)
    rr, aa = np.meshgrid(np.linspace(1.0, 1.5, 11), angles, indexing="ij")
    annulus = np.stack([rr * np.cos(aa), rr * np.sin(aa)], axis=-1).reshape(-1, 2)
    gaps = 0
    for seed in range(12):
        fitted = _fit(
            ModelSpec(kind="node"),
            train,
            validation,
            epochs=20,
            batch_size=64,
            seed=seed,
            loss="mse",
        )
        last = fitted.history[-1]
        lowest = fitted.predict(annulus)[:, 0].reshape(rr.shape).min(axis=0)
        channel = np.rad2deg(angles[np.argmin(lowest)])
        if last["test_loss"] > 0.25:
            gaps += 1
            assert last["test_loss"] > 20 * last["train_loss"]
            assert 0.0 <= channel <= 36.0, f"seed {seed}: gap, but the channel is at {channel}"
        else:
            assert last["test_loss"] < 0.1, f"seed {seed}: {last}"
    assert gaps >= 2
    for seed in range(3):
        spec = ModelSpec(kind="anode", augment_dim=5)
        fitted = _fit(spec, train, validation, epochs=20, batch_size=64, seed=seed, loss="mse")
        assert fitted.history[-1]["test_loss"] < 0.03


@pytest.mark.slow
def test_chebyshev_net_reaches_the_papers_accuracy_when_trained_longer():
    """Survey Table 1: the Chebyshev net (width 15, 1.3k parameters, tanh) has 97.4 % test
    accuracy. At Table 1's settings it has 87.1 +- 5.2 % after 50 epochs of 11 batches (the
    gap of issue 17) and 99.2 +- 0.7 % after 150 (scripts/fidelity/depth_variant.py): the net
    is slow to train, not unable to fit. Here: 3 seeds, 150 epochs, mean >= 96.5 %, each
    >= 95 %, and every seed gains at least 3 points between epochs 50 and 150."""
    spec = ModelSpec(kind="chebyshev", activation="tanh", degree=3)
    width, _ = match_width(spec, 2, 3, 1300, 0.05)
    assert width == 15
    accuracy = []
    for seed in range(3):
        data, test = three_spheres(n=1024, seed=seed), three_spheres(n=1024, seed=seed + 1000)
        fitted = _fit(spec.replace(hidden=width), data, test, epochs=150, batch_size=96, seed=seed)
        at50, at150 = fitted.history[49]["test_acc"], fitted.history[-1]["test_acc"]
        assert at150 >= 0.95 and at150 >= at50 + 0.03, (seed, at50, at150)
        accuracy.append(at150)
    assert np.mean(accuracy) >= 0.965


@pytest.mark.slow
def test_table1_needs_epochs_of_about_a_thousand_iterations():
    """Survey Table 1: 98.4 % (NODE) and 99.3 % (ANODE) test accuracy after "5 epochs" of
    "1024 points in batches of 96". Read literally (11 batches per epoch, 55 Adam steps) they
    stay far below (41.0 and 53.4 % in our Table 1); with epochs of 1024 batches of 96 (the
    ~1000 iterations per epoch that the paper's own times imply, docs/fidelity.md item 4) both
    reach the paper's accuracy. 2 seeds each; the literal setting is checked on 3."""
    for seed in range(3):
        data, test = three_spheres(n=1024, seed=seed), three_spheres(n=1024, seed=seed + 1000)
        for kind in ("node", "anode"):
            spec = ModelSpec(kind=kind, augment_dim=1 if kind == "anode" else 0)
            spec = spec.replace(hidden=match_width(spec, 2, 3, 1300, 0.05)[0])
            fitted = _fit(spec, data, test, epochs=5, batch_size=96, seed=seed)
            assert fitted.history[-1]["test_acc"] < 0.85
    n = 96 * 1024
    for seed in range(2):
        data, test = three_spheres(n=n, seed=seed), three_spheres(n=4096, seed=seed + 1000)
        for kind, paper in (("node", 0.984), ("anode", 0.993)):
            spec = ModelSpec(kind=kind, augment_dim=1 if kind == "anode" else 0)
            spec = spec.replace(hidden=match_width(spec, 2, 3, 1300, 0.05)[0])
            fitted = _fit(spec, data, test, epochs=5, batch_size=96, seed=seed)
            assert fitted.history[-1]["test_acc"] >= paper - 0.01, (kind, seed)
