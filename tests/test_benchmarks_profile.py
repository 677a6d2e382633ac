"""`benchmarks/profile.py`: the categories of a profiled training batch account for all of its
self time, and each part of the batch lands where its code lives."""

from __future__ import annotations

import math

import pytest

pytest.importorskip("torchdiffeq")  # benchmarks.peers imports the peers
from benchmarks import profile  # noqa: E402


def test_categories_sum_to_the_profiled_total_on_a_tiny_run():
    r = profile.profile_config("node", "backprop", points=192, warmup=1, epochs=2)
    seconds = r["self_seconds"]
    assert list(seconds) == list(profile.NAMES)
    assert all(s >= 0 for s in seconds.values())
    assert math.isclose(sum(seconds.values()), r["total_self_seconds"], rel_tol=1e-9)
    assert r["profiled_batches"] == 2 * r["batches_per_epoch"] == 4
    # the profiled epochs start again from the timed epochs' weights: the same solves
    assert r["profiled_nfe_forward"] == r["nfe_forward"] > 0
    for name in (
        "step loop + controller",
        "torch autograd engine",
        "optimiser (torch.optim Adam)",
        "model and loss (pyanode modules, torch.nn)",
    ):
        assert seconds[name] > 0, name
    assert seconds[profile.OTHER] <= 0.01 * r["total_self_seconds"]


class _Stats:
    """pstats.Stats' table: key -> (calls, primitive calls, tottime, cumtime, callers)."""

    def __init__(self, table):
        self.stats = table


def test_a_builtin_is_split_between_its_callers_categories_by_edge_time():
    adam = ("/site/torch/optim/adam.py", 1, "_single_tensor_adam")
    loop = ("/repo/pyanode/solvers/_loop.py", 98, "integrate")
    root = ("/repo/benchmarks/training.py", 83, "epoch")
    op = ("~", 0, "<built-in method torch.mul>")
    orphan = ("~", 0, "<built-in method nothing_calls_me>")
    table = {
        root: (1, 1, 0.5, 9.0, {}),
        adam: (1, 1, 1.0, 2.0, {root: (1, 1, 1.0, 2.0)}),
        loop: (1, 1, 2.0, 5.0, {root: (1, 1, 2.0, 5.0)}),
        op: (4, 4, 4.0, 4.0, {adam: (1, 1, 1.0, 1.0), loop: (3, 3, 3.0, 3.0)}),
        orphan: (1, 1, 0.25, 0.25, {}),
    }
    seconds = profile.group(_Stats(table))
    assert seconds["optimiser (torch.optim Adam)"] == pytest.approx(1.0 + 1.0)
    assert seconds["step loop + controller"] == pytest.approx(2.0 + 3.0)
    assert seconds["benchmark loop"] == pytest.approx(0.5)
    assert seconds[profile.OTHER] == pytest.approx(0.25)
    assert sum(seconds.values()) == pytest.approx(7.75)
