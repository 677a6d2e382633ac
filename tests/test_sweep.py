"""Sweeps: grid expansion and trial ids, failures recorded while the others go on, interrupted
sweeps completed by re-running, and the collected CSV."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import pytest

from pyanode import ModelSpec, RunSpec, SolverSpec, TrainSpec
from pyanode._errors import SOLVER_FAILURES
from pyanode.cli import main
from pyanode.experiments.batch import TrialFailed
from pyanode.experiments.engines import InProcess
from pyanode.experiments.runner import RunOptions, load_checkpoint, run_trial
from pyanode.experiments.store import (
    CHECKPOINT,
    RESULT,
    collect,
    read_csv,
    read_history,
    read_result,
    trial_id,
    write_csv,
)
from pyanode.experiments.sweep import Sweep, load_sweep, run_sweep

REPO = Path(__file__).resolve().parents[1]

BASE = """
[base]
dataset = "concentric-spheres"
[base.dataset_kwargs]
n_inner = 30
n_outer = 60
[base.model]
hidden = 8
[base.solver]
rtol = 1e-3
atol = 1e-4
max_steps = 200
[base.train]
epochs = 2
batch_size = 16
lr = 1e-2
"""
# 4 trials: two models (fields set together) x two seeds
GRID = (
    BASE
    + """
[grid]
model = [{kind = "node"}, {kind = "anode", augment_dim = 1}]
"train.seed" = [0, 1]
"""
)
# lr = 1e6 blows the vector field up on the second batch; the two others train
EXPLODING = (
    BASE
    + """
[grid]
"train.lr" = [1e-2, 1e6, 3e-2]
"""
)


def _write(tmp_path: Path, text: str, name: str = "sweep.toml") -> Path:
    path = tmp_path / name
    path.write_text(text)
    return path


# -- the grid ------------------------------------------------------------------------------------
def test_grid_is_the_product_of_its_axes_in_order():
    sweep = Sweep.from_toml(GRID)
    points = sweep.points()
    assert points == [
        {"model": {"kind": "node"}, "train.seed": 0},
        {"model": {"kind": "node"}, "train.seed": 1},
        {"model": {"kind": "anode", "augment_dim": 1}, "train.seed": 0},
        {"model": {"kind": "anode", "augment_dim": 1}, "train.seed": 1},
    ]
    specs = sweep.trials()
    assert [(s.model.kind, s.model.augment_dim, s.train.seed) for s in specs] == [
        ("node", 0, 0),
        ("node", 0, 1),
        ("anode", 1, 0),
        ("anode", 1, 1),
    ]
    # the base is kept where the grid does not set a field
    assert {s.model.hidden for s in specs} == {8}
    assert {s.solver.max_steps for s in specs} == {200}
    assert len({trial_id(s) for s in specs}) == 4


def test_grid_axes_for_dataset_arguments_and_whole_runs():
    sweep = Sweep.from_toml(
        BASE
        + """
[grid]
"dataset_kwargs.dim" = [1, 3]
run = [{test_fraction = 0.25}, {dataset = "three-spheres", dataset_kwargs = {n = 60}}]
"solver.solver" = ["rk4"]
"solver.dt" = [0.25]
"""
    )
    specs = sweep.trials()
    assert [(s.dataset, s.dataset_kwargs, s.test_fraction) for s in specs] == [
        ("concentric-spheres", {"n_inner": 30, "n_outer": 60, "dim": 1}, 0.25),
        ("three-spheres", {"n": 60}, 0.2),  # a dataset_kwargs table replaces the base's
        ("concentric-spheres", {"n_inner": 30, "n_outer": 60, "dim": 3}, 0.25),
        ("three-spheres", {"n": 60}, 0.2),
    ]
    assert {(s.solver.solver, s.solver.dt) for s in specs} == {("rk4", 0.25)}


def test_trial_id_is_a_hash_of_the_resolved_spec_and_its_seed():
    spec = RunSpec(model=ModelSpec(kind="anode", augment_dim=2), train=TrainSpec(seed=4))
    canonical = json.dumps(spec.to_dict(), sort_keys=True)
    assert trial_id(spec) == hashlib.sha256(canonical.encode()).hexdigest()[:12]
    assert trial_id(spec) != trial_id(spec.replace(train=TrainSpec(seed=5)))
    # resolved: giving a default explicitly, or in another key order, is the same trial
    explicit = RunSpec.from_dict(
        {"train": {"seed": 4, "lr": 1e-3}, "model": {"augment_dim": 2, "kind": "anode"}}
    )
    assert trial_id(explicit) == trial_id(spec)
    a = Sweep.from_toml(BASE + '[grid]\n"train.seed" = [0]\n"model.hidden" = [8]\n').trials()
    b = Sweep.from_toml(BASE + '[grid]\n"model.hidden" = [8]\n"train.seed" = [0]\n').trials()
    assert [trial_id(s) for s in a] == [trial_id(s) for s in b]


def test_the_same_trial_twice_runs_once(tmp_path, count_trainings):
    spec = Sweep.from_toml(BASE).trials()[0]
    fits = count_trainings()
    report = run_sweep([spec, spec], tmp_path, engine=InProcess())
    assert report.ids == [trial_id(spec)] and len(fits) == 1


# -- failures ------------------------------------------------------------------------------------
def test_an_exploding_trial_is_recorded_and_the_others_finish(tmp_path):
    sweep = Sweep.from_toml(EXPLODING)
    ids = [trial_id(s) for s in sweep.trials()]
    report = run_sweep(sweep, tmp_path, engine=InProcess(), options=RunOptions(checkpoint_every=1))

    assert report.failed == [ids[1]]
    assert report.ok == [ids[0], ids[2]]
    failed = read_result(tmp_path / ids[1])
    assert failed["status"] == "failed"
    assert failed["error"] in ("SolverError", "TrainingDiverged")
    if failed["error"] == "SolverError":
        assert failed["reason"] in SOLVER_FAILURES
        assert 0.0 <= failed["t"] <= 1.0 and failed["dt"] >= 0.0 and failed["nfe"] >= 1
    else:
        assert failed["reason"] == "nonfinite_loss"
    # lr = 1e6: the first Adam step moves every weight by ~1e6, so the second batch fails
    assert (failed["failed_epoch"], failed["failed_batch"]) == (1, 2)
    assert failed["epochs_completed"] == 0 and read_history(tmp_path / ids[1]) == []
    # the position before the failure is kept for inspection
    state = load_checkpoint(tmp_path / ids[1] / CHECKPOINT)["trainer"]
    assert (state["epoch"], state["batch"]) == (0, 1)
    for i in (ids[0], ids[2]):
        ok = read_result(tmp_path / i)
        assert ok["status"] == "ok" and ok["epoch"] == 2 and 0.0 <= ok["test_acc"] <= 1.0
        assert len(read_history(tmp_path / i)) == 2

    summary = report.summary()
    assert summary.startswith("3 trial(s): 2 ok, 1 failed")
    assert f"FAILED {ids[1]} [train.lr=1000000.0] {failed['error']} ({failed['reason']})" in summary


def test_cli_sweep_reports_failures_with_exit_code_1(tmp_path, capsys):
    config = _write(tmp_path, EXPLODING)
    out = tmp_path / "out"
    code = main(["sweep", str(config), "--out", str(out), "--engine", "inline"])
    assert code == 1
    printed = capsys.readouterr().out
    assert "3 trial(s): 2 ok, 1 failed" in printed and "FAILED" in printed
    rows = read_csv(out / "results.csv")
    assert [r["status"] for r in rows] == ["ok", "failed", "ok"]
    assert [float(r["train.lr"]) for r in rows] == [1e-2, 1e6, 3e-2]
    assert rows[1]["reason"] != "" and rows[0]["reason"] == ""


def test_on_failure_raise_stops_at_the_first_failure(tmp_path, count_trainings):
    sweep = Sweep.from_toml(EXPLODING)
    ids = [trial_id(s) for s in sweep.trials()]
    with pytest.raises(
        TrialFailed, match=rf"trial {ids[1]} failed: (SolverError|TrainingDiverged)"
    ):
        run_sweep(sweep, tmp_path, engine=InProcess(), options=RunOptions(on_failure="raise"))
    assert read_result(tmp_path / ids[0])["status"] == "ok"
    assert read_result(tmp_path / ids[1])["status"] == "failed"  # recorded before raising
    assert not (tmp_path / ids[2] / RESULT).exists()  # never started

    # record-and-continue finishes the rest; the stored failure still counts
    fits = count_trainings()
    report = run_sweep(sweep, tmp_path, engine=InProcess())
    assert len(fits) == 1 and report.skipped == ids[:2] and report.failed == [ids[1]]
    # --retry-failed runs the failed trial again (it fails again: the failure is deterministic)
    report = run_sweep(sweep, tmp_path, engine=InProcess(), options=RunOptions(retry_failed=True))
    assert len(fits) == 2 and report.failed == [ids[1]] and report.skipped == [ids[0], ids[2]]


def test_cli_on_failure_raise_exits_1(tmp_path, capsys):
    config = _write(tmp_path, EXPLODING)
    argv = ["sweep", str(config), "--out", str(tmp_path / "o"), "--engine", "inline"]
    assert main([*argv, "--on-failure", "raise"]) == 1
    assert "failed" in capsys.readouterr().err


# -- interruption ------------------------------------------------------------------------------
def test_an_interrupted_sweep_completes_on_rerun_without_repeating_trials(
    tmp_path, cli_killed_at, count_trainings
):
    config = _write(tmp_path, GRID)
    ids = [trial_id(s) for s in load_sweep(config).trials()]
    out = tmp_path / "out"
    # 4 trials x 2 epochs x 5 batches; SIGKILL before the 24th batch: two trials done, the third
    # 3 batches into its first epoch (checkpointed after 2), the fourth not started
    argv = ["sweep", config, "--out", out, "--engine", "inline", "--checkpoint-every", "2"]
    cli_killed_at(argv, 24)
    assert [r["status"] for r in collect(out)] == ["ok", "ok", "interrupted", "pending"]
    stamps = {i: (out / i / RESULT).stat().st_mtime_ns for i in ids[:2]}

    fits = count_trainings()
    argv = ["sweep", str(config), "--out", str(out), "--engine", "inline"]
    assert main(argv) == 0
    assert len(fits) == 2  # the interrupted trial and the one not started; not the finished two
    assert {i: (out / i / RESULT).stat().st_mtime_ns for i in ids[:2]} == stamps
    resumed = read_result(out / ids[2])
    assert (resumed["resumed_epoch"], resumed["resumed_batch"]) == (0, 2)
    assert read_result(out / ids[3])["resumed_epoch"] is None

    # the same weights and metrics as a sweep that was never interrupted
    reference = run_sweep(load_sweep(config), tmp_path / "reference", engine=InProcess())
    for i in ids:
        got, want = read_result(out / i), reference.results[i]
        assert got["params_sha256"] == want["params_sha256"]
        assert [r["loss"] for r in read_history(out / i)] == [
            r["loss"] for r in read_history(tmp_path / "reference" / i)
        ]

    assert main(argv) == 0 and len(fits) == 2 + 4  # (reference) + nothing more


# -- collect ------------------------------------------------------------------------------------
def test_collect_writes_one_row_per_trial_in_grid_order(tmp_path, capsys):
    sweep = Sweep.from_toml(GRID)
    report = run_sweep(sweep, tmp_path, engine=InProcess())
    assert main(["collect", str(tmp_path), "--csv", str(tmp_path / "all.csv")]) == 0
    assert "4 trial(s) (4 ok)" in capsys.readouterr().out
    rows = read_csv(tmp_path / "all.csv")
    assert [r["trial_id"] for r in rows] == report.ids
    assert list(rows[0])[:3] == ["trial_id", "label", "status"]
    for row in rows:
        stored = read_result(tmp_path / row["trial_id"])
        assert float(row["test_acc"]) == stored["test_acc"]  # floats survive the CSV exactly
        assert row["params_sha256"] == stored["params_sha256"]
        assert row["threads"] == "1"
    assert [(r["model.kind"], r["model.augment_dim"], r["train.seed"]) for r in rows] == [
        ("node", "0", "0"),
        ("node", "0", "1"),
        ("anode", "1", "0"),
        ("anode", "1", "1"),
    ]
    assert rows[0]["label"] == 'model={"kind": "node"} train.seed=0'
    assert rows[0]["dataset_kwargs.n_inner"] == "30"


def test_collect_orders_folders_outside_the_manifest_by_name(tmp_path):
    spec = RunSpec(
        dataset="concentric-spheres",
        dataset_kwargs={"n_inner": 10, "n_outer": 20},
        model=ModelSpec(hidden=4),
        solver=SolverSpec(solver="euler", dt=0.5),
        train=TrainSpec(epochs=1, batch_size=32),
    )
    b = run_trial(spec, tmp_path / "b-trial")
    seed_1 = spec.replace(train=TrainSpec(epochs=1, batch_size=32, seed=1))
    a = run_trial(seed_1, tmp_path / "a-trial")
    rows = collect(tmp_path)
    assert [r["folder"] for r in rows] == ["a-trial", "b-trial"]
    assert [r["trial_id"] for r in rows] == [a["trial_id"], b["trial_id"]]
    path = write_csv(rows, tmp_path / "t.csv")
    assert [r["status"] for r in read_csv(path)] == ["ok", "ok"]
