"""The one trial runner (`pyanode.experiments.runner`), checkpoint and resume: a trial SIGKILLed
mid-epoch and resumed ends bit-identical to one that never stopped (also what it records per
iteration, and through `pyanode train`), and identity breaks when any part of the saved state
(RNG, optimiser, batch position) is missing: so the identity test can fail."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
from torch import nn

from pyanode import ModelSpec, RunSpec, SolverSpec, TrainSpec
from pyanode.experiments.runner import (
    Record,
    RunOptions,
    Trial,
    capture_rng_states,
    load_checkpoint,
    run_trial,
    seeded_rng_states,
)
from pyanode.experiments.store import (
    ARRAYS,
    CHECKPOINT,
    HISTORY,
    ITERATIONS,
    RESULT,
    TRIAL,
    WEIGHTS,
)
from pyanode.experiments.store import SPEC as SPEC_FILE
from pyanode.torch._models import MODELS

REPO = Path(__file__).resolve().parents[1]
TESTS = Path(__file__).resolve().parent

# 90 points, 72 for training: 5 batches of 16 (the last one 8) per epoch, 3 epochs = 15 batches.
SPEC = RunSpec(
    dataset="concentric-spheres",
    dataset_kwargs={"n_inner": 30, "n_outer": 60},
    model=ModelSpec(kind="node", hidden=8),
    solver=SolverSpec(solver="dp5", rtol=1e-3, atol=1e-4),
    train=TrainSpec(epochs=3, batch_size=16, lr=1e-2, seed=3),
)
# A model that draws from torch's global generator at every training step (dropout), as a model
# registered by a user may: resuming it needs the RNG state of the checkpoint.
DROPOUT_SPEC = SPEC.replace(model=ModelSpec(kind="resnet", hidden=16))
KILL_AFTER = 8  # batches: epoch 2, batch 3 done; the last checkpoint (every 2) is after batch 2
EVERY_2 = RunOptions(checkpoint_every=2)
# what a Dupont reproduction records: per-iteration rows, the test loss every 3 iterations, and
# feature snapshots of 10 probe points before, during and after training
RECORD = Record(iterations=True, eval_every=3, probe=10, snapshot_at=(0, 7, 15))


class _DropoutNet(nn.Module):
    def __init__(self, in_dim: int, out_dim: int, hidden: int):
        super().__init__()
        self.body = nn.Sequential(nn.Linear(in_dim, hidden), nn.Tanh(), nn.Dropout(0.5))
        self.head = nn.Linear(hidden, out_dim)

    def features(self, x: torch.Tensor) -> torch.Tensor:
        return self.body(x)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(self.body(x))


def _dropout_builder(spec, solver, in_dim, out_dim):
    return _DropoutNet(in_dim, out_dim, spec.hidden)


def child_main(
    folder: str, spec_json: str, kill_after: int, dropout: bool, record: bool = False
) -> None:
    """Run in a fresh interpreter: train with a checkpoint every 2 batches, SIGKILL itself after
    `kill_after` batches (no cleanup, no flush: as `kill -9` or the OOM killer would)."""
    if dropout:
        MODELS["resnet"] = _dropout_builder
    count = 0

    def killer(trainer) -> None:
        nonlocal count
        count += 1
        if count == kill_after:
            os.kill(os.getpid(), signal.SIGKILL)

    spec = RunSpec.from_json(spec_json)
    trial = Trial(spec, record=RECORD) if record else spec
    run_trial(trial, folder, options=EVERY_2, threads=1, on_batch=killer)
    sys.exit(3)  # not reached if the kill happened


def _run_and_kill(folder: Path, spec: RunSpec, dropout: bool, record: bool = False) -> None:
    code = (
        f"import sys; sys.path[:0] = [{str(TESTS)!r}, {str(REPO)!r}]; import test_runner; "
        f"test_runner.child_main({str(folder)!r}, {spec.to_json()!r}, {KILL_AFTER}, {dropout}, "
        f"{record})"
    )
    proc = subprocess.run(
        [sys.executable, "-c", code], cwd=REPO, capture_output=True, text=True, timeout=120
    )
    assert proc.returncode == -signal.SIGKILL, proc.stderr


def _interrupt_in_process(folder: Path, spec: RunSpec) -> None:
    count = 0

    def interrupt(trainer) -> None:
        nonlocal count
        count += 1
        if count == KILL_AFTER:
            raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        run_trial(spec, folder, options=EVERY_2, threads=1, on_batch=interrupt)


def _final_state(folder: Path) -> dict:
    return load_checkpoint(folder / CHECKPOINT)["trainer"]


def _same_tensors(a, b) -> bool:
    """Exact equality of two nested structures of tensors and plain values."""
    if isinstance(a, torch.Tensor):
        return isinstance(b, torch.Tensor) and a.dtype == b.dtype and torch.equal(a, b)
    if isinstance(a, dict):
        return a.keys() == b.keys() and all(_same_tensors(a[k], b[k]) for k in a)
    if isinstance(a, (list, tuple)):
        return len(a) == len(b) and all(_same_tensors(x, y) for x, y in zip(a, b, strict=True))
    return a == b


def _losses(folder: Path) -> list[float]:
    lines = (folder / HISTORY).read_text().splitlines()
    return [json.loads(line)["loss"] for line in lines]


@pytest.mark.parametrize("dropout", [False, True], ids=["node", "dropout-net"])
def test_sigkill_mid_epoch_then_resume_is_bit_identical(tmp_path, monkeypatch, dropout):
    spec = DROPOUT_SPEC if dropout else SPEC
    if dropout:
        monkeypatch.setitem(MODELS, "resnet", _dropout_builder)
    reference = run_trial(spec, tmp_path / "reference", threads=1)

    killed = tmp_path / "killed"
    _run_and_kill(killed, spec, dropout)
    assert not (killed / RESULT).exists()
    position = _final_state(killed)
    assert (position["epoch"], position["batch"]) == (1, 2)  # mid-epoch, one batch behind the kill
    assert len(_losses(killed)) == 1  # the first epoch's row survived the kill

    resumed = run_trial(spec, killed, options=EVERY_2, threads=1)
    assert (resumed["resumed_epoch"], resumed["resumed_batch"]) == (1, 2)
    assert reference["resumed_epoch"] is None

    ref_state, res_state = _final_state(tmp_path / "reference"), _final_state(killed)
    assert ref_state["model"].keys() == res_state["model"].keys()
    for name, weight in ref_state["model"].items():
        assert torch.equal(weight, res_state["model"][name]), name
    assert _same_tensors(ref_state["optimizer"], res_state["optimizer"])
    assert _losses(killed) == _losses(tmp_path / "reference")
    assert resumed["params_sha256"] == reference["params_sha256"]
    assert resumed["test_loss"] == reference["test_loss"]


@pytest.mark.parametrize("missing", ["rng", "optimizer", "batch"])
def test_resume_without_its_full_state_is_not_identical(tmp_path, monkeypatch, missing):
    """Control for the test above: drop one part of the checkpoint and the identity breaks."""
    monkeypatch.setitem(MODELS, "resnet", _dropout_builder)
    reference = run_trial(DROPOUT_SPEC, tmp_path / "reference", threads=1)

    folder = tmp_path / "interrupted"
    _interrupt_in_process(folder, DROPOUT_SPEC)
    honest = tmp_path / "honest"
    honest.mkdir()
    for name in (SPEC_FILE, TRIAL, CHECKPOINT, HISTORY):
        (honest / name).write_bytes((folder / name).read_bytes())
    assert run_trial(DROPOUT_SPEC, honest, threads=1)["params_sha256"] == reference["params_sha256"]

    payload = load_checkpoint(folder / CHECKPOINT)
    if missing == "rng":  # what a resume that does not restore the generators would draw
        payload["rng"] = seeded_rng_states(DROPOUT_SPEC.train.seed)
    elif missing == "optimizer":  # Adam's moments and step counts lost
        payload["trainer"]["optimizer"]["state"] = {}
    else:  # the batch position lost: the epoch starts over
        payload["trainer"]["batch"] = 0
    torch.save(payload, folder / CHECKPOINT)
    broken = run_trial(DROPOUT_SPEC, folder, threads=1)
    assert broken["status"] == "ok"
    assert broken["params_sha256"] != reference["params_sha256"]
    ref_model = _final_state(tmp_path / "reference")["model"]
    bad_model = _final_state(folder)["model"]
    assert not all(torch.equal(ref_model[k], bad_model[k]) for k in ref_model)


def test_a_trial_leaves_the_callers_generators_alone(tmp_path, monkeypatch):
    monkeypatch.setitem(MODELS, "resnet", _dropout_builder)
    torch.manual_seed(1234)
    before = capture_rng_states()
    run_trial(DROPOUT_SPEC, tmp_path / "t", threads=1)
    assert _same_tensors(before, capture_rng_states())


def test_trial_results_do_not_depend_on_the_callers_generators(tmp_path, monkeypatch):
    """A worker that ran other trials before has other global RNG states: same result."""
    monkeypatch.setitem(MODELS, "resnet", _dropout_builder)
    torch.manual_seed(1)
    first = run_trial(DROPOUT_SPEC, tmp_path / "a", threads=1)
    torch.manual_seed(2)
    torch.rand(100)
    second = run_trial(DROPOUT_SPEC, tmp_path / "b", threads=1)
    assert first["params_sha256"] == second["params_sha256"]
    assert first["test_loss"] == second["test_loss"]


def test_killed_after_the_last_checkpoint_finishes_without_training(tmp_path):
    folder = tmp_path / "t"
    done = run_trial(SPEC, folder, threads=1)
    (folder / RESULT).unlink()  # as if killed between the last checkpoint and result.json
    again = run_trial(SPEC, folder, threads=1)
    assert (again["resumed_epoch"], again["resumed_batch"]) == (SPEC.train.epochs, 0)
    assert again["params_sha256"] == done["params_sha256"]
    assert again["seconds_total"] == done["seconds_total"]  # no epoch was trained again


def test_a_finished_trial_is_returned_not_run_again(tmp_path, forbid_training):
    folder = tmp_path / "t"
    done = run_trial(SPEC, folder, threads=1)
    stamp = (folder / RESULT).stat().st_mtime_ns

    forbid_training()
    assert run_trial(SPEC, folder, threads=1) == done
    assert (folder / RESULT).stat().st_mtime_ns == stamp


def test_a_recording_trial_killed_mid_epoch_resumes_its_records_bit_identically(tmp_path):
    """The per-iteration rows, test losses and feature snapshots of a Dupont-style trial survive
    a SIGKILL: the resumed trial stores exactly the files of one that never stopped."""
    trial = Trial(SPEC, record=RECORD)
    reference = run_trial(trial, tmp_path / "reference", threads=1)
    killed = tmp_path / "killed"
    _run_and_kill(killed, SPEC, dropout=False, record=True)
    assert not (killed / RESULT).exists()
    resumed = run_trial(trial, killed, options=EVERY_2, threads=1)
    assert (resumed["resumed_epoch"], resumed["resumed_batch"]) == (1, 2)
    assert resumed["params_sha256"] == reference["params_sha256"]
    ref_rows = (tmp_path / "reference" / ITERATIONS).read_text().splitlines()
    rows = (killed / ITERATIONS).read_text().splitlines()
    assert rows == ref_rows and len(rows) == 16  # iteration 0 (test loss only) and 15 batches
    assert "test_loss" in json.loads(rows[3]) and "test_loss" not in json.loads(rows[2])
    with np.load(killed / ARRAYS) as got, np.load(tmp_path / "reference" / ARRAYS) as want:
        assert sorted(got.files) == sorted(want.files)
        for name in want.files:
            assert np.array_equal(got[name], want[name]), name
        assert list(got["snapshot_iterations"]) == [0, 7, 15]


TRAIN_ARGS = [
    "train", "--dataset", "concentric-spheres", "--dataset-arg", "n_inner=30",
    "--dataset-arg", "n_outer=60", "--hidden", "8", "--rtol", "1e-3", "--atol", "1e-4",
    "--epochs", "3", "--batch-size", "16", "--lr", "1e-2", "--seed", "3", "--threads", "1",
    "--checkpoint-every", "2", "--no-progress",
]  # fmt: skip


def test_cli_train_killed_mid_run_resumes_to_bit_identical_weights(tmp_path, capsys, cli_killed_at):
    """`pyanode train --out DIR` SIGKILLed in its second epoch, then run again: it resumes from
    the checkpoint and stores the weights of a run that never stopped; a third run trains
    nothing and returns the stored trial."""
    from pyanode.cli import main

    assert main([*TRAIN_ARGS, "--out", str(tmp_path / "reference")]) == 0
    killed = tmp_path / "killed"
    argv = [*TRAIN_ARGS, "--out", str(killed)]
    cli_killed_at(argv, KILL_AFTER + 1)
    assert not (killed / WEIGHTS).exists() and (killed / CHECKPOINT).exists()
    capsys.readouterr()
    assert main(argv) == 0
    assert "resumed at epoch 2" in capsys.readouterr().out
    want = np.load(tmp_path / "reference" / WEIGHTS)
    assert np.array_equal(np.load(killed / WEIGHTS), want)
    stamp = (killed / RESULT).stat().st_mtime_ns
    assert main(argv) == 0 and (killed / RESULT).stat().st_mtime_ns == stamp
