"""Engines (`pyanode.experiments.engines`): the same sweep gives the same results on every
engine: a local process pool with 1 or 2 workers, the trials in reverse order, and a Dask
LocalCluster of worker processes."""

from __future__ import annotations

from pathlib import Path

import pytest

from pyanode.experiments.engines import DaskEngine, InProcess, LocalPool, get_engine
from pyanode.experiments.store import collect, read_history, trial_id
from pyanode.experiments.sweep import Sweep, run_sweep

CONFIG = """
[base]
dataset = "concentric-spheres"
[base.dataset_kwargs]
n_inner = 30
n_outer = 60
[base.model]
hidden = 8
[base.train]
epochs = 2
batch_size = 16
lr = 1e-2

[grid]
model = [{kind = "node"}, {kind = "anode", augment_dim = 1}]
"train.seed" = [0, 1]
"""
# wall-clock times (and the grid label, absent when specs are given as a list) may differ
VOLATILE = {"seconds", "seconds_total", "seconds_per_epoch", "label"}


def _outcome(out: Path, ids: list[str]) -> dict[str, object]:
    """Every stored number that must not depend on the engine: results and per-epoch rows."""
    rows = {r["trial_id"]: r for r in collect(out)}
    outcome = {}
    for i in ids:
        result = {k: v for k, v in rows[i].items() if k not in VOLATILE}
        history = [{k: v for k, v in r.items() if k not in VOLATILE} for r in read_history(out / i)]
        outcome[i] = (result, history)
    return outcome


def _assert_same(got: dict, want: dict) -> None:
    """Equal outcomes; on failure, name the trial, the epoch and the fields that differ."""
    assert got.keys() == want.keys()
    for i in want:
        (result, history), (want_result, want_history) = got[i], want[i]
        diff = {k: (result.get(k), want_result.get(k)) for k in {*result, *want_result}}
        assert {k: v for k, v in diff.items() if v[0] != v[1]} == {}, i
        for epoch, (row, want_row) in enumerate(zip(history, want_history, strict=True), 1):
            assert row == want_row, (i, epoch)


@pytest.fixture(scope="module")
def reference(tmp_path_factory):
    """The sweep on a pool of one worker, in grid order."""
    sweep = Sweep.from_toml(CONFIG)
    out = tmp_path_factory.mktemp("pool1")
    report = run_sweep(sweep, out, engine=LocalPool(workers=1, threads=1))
    assert report.failed == [] and len(report.ok) == 4
    return sweep, report.ids, _outcome(out, report.ids)


def test_pool_of_two_workers_in_reverse_order_gives_the_same_results(reference, tmp_path):
    sweep, ids, want = reference
    specs = sweep.trials()[::-1]
    report = run_sweep(specs, tmp_path, engine=LocalPool(workers=2, threads=1))
    assert report.ids == [trial_id(s) for s in specs] == ids[::-1]
    got = _outcome(tmp_path, ids)
    _assert_same(got, want)
    assert {got[i][0]["threads"] for i in ids} == {1}  # the pinned thread count is recorded
    # and the same numbers as in this (single-threaded) test process
    inline = run_sweep(sweep, tmp_path / "inline", engine=InProcess(threads=1))
    _assert_same(_outcome(tmp_path / "inline", inline.ids), want)


def test_dask_local_cluster_gives_the_same_results_as_the_pool(reference, tmp_path):
    pytest.importorskip("distributed")
    sweep, ids, want = reference
    engine = get_engine("dask", workers=2, threads=1)
    assert engine == DaskEngine(scheduler=None, workers=2, threads=1)
    report = run_sweep(sweep, tmp_path, engine=engine)
    assert report.ids == ids and report.failed == []
    _assert_same(_outcome(tmp_path, ids), want)
