"""The results store: whole-or-nothing writes, checkpoints read with weights_only, RNG states that
round-trip, and `result.json` written last."""

from __future__ import annotations

import json
import os
import random

import numpy as np
import pytest
import torch

from pyanode import ModelSpec, RunSpec, SolverSpec, SpecError, TrainSpec
from pyanode.experiments import checkpoint as checkpoint_module
from pyanode.experiments import trial as trial_module
from pyanode.experiments.checkpoint import (
    CHECKPOINT,
    capture_rng_states,
    load_checkpoint,
    restore_rng_states,
    rng_scope,
    save_checkpoint,
    seeded_rng_states,
)
from pyanode.experiments.store import atomic_write, atomic_write_text
from pyanode.experiments.trial import HISTORY, RESULT, SPEC, run_trial

RUN = RunSpec(
    dataset="concentric-spheres",
    dataset_kwargs={"n_inner": 30, "n_outer": 60},
    model=ModelSpec(hidden=4),
    solver=SolverSpec(solver="rk4", dt=0.25),
    train=TrainSpec(epochs=2, batch_size=16),
)


def test_atomic_write_keeps_the_old_file_when_writing_fails(tmp_path):
    path = tmp_path / "f.bin"
    atomic_write(path, lambda f: f.write(b"old"))

    def half_then_crash(f):
        f.write(b"new, half written")
        raise OSError("disk full")

    with pytest.raises(OSError, match="disk full"):
        atomic_write(path, half_then_crash)
    assert path.read_bytes() == b"old"
    assert os.listdir(tmp_path) == ["f.bin"]  # no temporary file left behind
    atomic_write_text(path, "new")
    assert path.read_text() == "new" and os.listdir(tmp_path) == ["f.bin"]


def test_a_failed_checkpoint_write_leaves_the_previous_checkpoint(tmp_path, monkeypatch):
    path = tmp_path / CHECKPOINT
    state = {"epoch": 1, "batch": 2, "w": torch.arange(4.0)}
    save_checkpoint(path, RUN, state)

    def crashing_save(obj, f):
        f.write(b"\x80\x02 partial pickle")
        raise KeyboardInterrupt  # killed mid-write

    monkeypatch.setattr(checkpoint_module.torch, "save", crashing_save)
    with pytest.raises(KeyboardInterrupt):
        save_checkpoint(path, RUN, {"epoch": 2, "batch": 0, "w": torch.zeros(4)})
    monkeypatch.undo()
    payload = load_checkpoint(path, RUN)
    assert payload["trainer"]["epoch"] == 1 and torch.equal(
        payload["trainer"]["w"], torch.arange(4.0)
    )
    assert os.listdir(tmp_path) == [CHECKPOINT]


class _Payload:
    """An object whose unpickling would run code: creates a folder."""

    def __init__(self, marker: str):
        self.marker = marker

    def __reduce__(self):
        return (os.mkdir, (self.marker,))


def test_checkpoints_are_loaded_with_weights_only(tmp_path):
    marker = tmp_path / "code-ran"
    path = tmp_path / CHECKPOINT
    torch.save({"format": 1, "spec": RUN.to_json(), "trainer": _Payload(str(marker))}, path)
    with pytest.raises(SpecError, match=r"checkpoint\.pt' cannot be read: .*Weights only load"):
        load_checkpoint(path)
    assert not marker.exists()


def test_a_truncated_checkpoint_is_refused(tmp_path):
    path = save_checkpoint(tmp_path / CHECKPOINT, RUN, {"epoch": 0})
    path.write_bytes(path.read_bytes()[:100])
    with pytest.raises(SpecError, match=r"checkpoint\.pt' cannot be read"):
        load_checkpoint(path)


def test_rng_states_round_trip_through_a_checkpoint(tmp_path):
    torch.manual_seed(7)
    np.random.seed(7)
    random.seed(7)
    torch.rand(3), np.random.rand(3), random.random()
    path = save_checkpoint(tmp_path / CHECKPOINT, RUN, {"epoch": 0})
    want = (
        torch.rand(5),
        np.random.rand(5),
        np.random.normal(),
        [random.random() for _ in range(5)],
    )
    torch.manual_seed(99), np.random.seed(99), random.seed(99)
    restore_rng_states(load_checkpoint(path, RUN)["rng"])
    got = (
        torch.rand(5),
        np.random.rand(5),
        np.random.normal(),
        [random.random() for _ in range(5)],
    )
    assert torch.equal(want[0], got[0])
    assert np.array_equal(want[1], got[1]) and want[2] == got[2] and want[3] == got[3]


def test_rng_scope_seeds_inside_and_restores_outside():
    torch.manual_seed(123)
    outside = torch.rand(3)
    torch.manual_seed(123)
    with rng_scope(seeded_rng_states(5)):
        inside = torch.rand(3), np.random.rand(2), random.random()
    assert torch.equal(torch.rand(3), outside)  # the caller's stream went on untouched
    torch.manual_seed(5), np.random.seed(5), random.seed(5)
    assert torch.equal(inside[0], torch.rand(3))
    assert np.array_equal(inside[1], np.random.rand(2)) and inside[2] == random.random()
    assert capture_rng_states()["numpy"]["name"] == "MT19937"


def test_result_json_is_written_last_and_history_after_each_epoch(tmp_path, monkeypatch):
    written = []
    for module, name in ((trial_module, "atomic_write_text"), (checkpoint_module, "atomic_write")):
        original = getattr(module, name)

        def record(path, *args, _original=original):
            written.append(os.path.basename(path))
            return _original(path, *args)

        monkeypatch.setattr(module, name, record)
    rows_seen = []

    def count_rows(trainer):
        text = (tmp_path / HISTORY).read_text() if (tmp_path / HISTORY).exists() else ""
        rows_seen.append(len(text.splitlines()))
        assert not (tmp_path / RESULT).exists()

    result = run_trial(RUN, tmp_path, checkpoint_every=2, on_batch=count_rows)
    # 72 training points in batches of 16: 5 batches per epoch; an epoch's row is stored right
    # after the epoch (the hook of its last batch runs just before)
    assert rows_seen == [0, 0, 0, 0, 0, 1, 1, 1, 1, 1]
    assert written[0] == SPEC and written[-1] == RESULT
    # per epoch: checkpoints after batches 2 and 4, then the epoch's checkpoint and history
    per_epoch = [CHECKPOINT, CHECKPOINT, CHECKPOINT, HISTORY]
    assert written[1:-2] == per_epoch * 2 and written[-2] == HISTORY
    stored = json.loads((tmp_path / RESULT).read_text())
    assert stored == result and stored["status"] == "ok"
    assert [
        json.loads(line)["epoch"] for line in (tmp_path / HISTORY).read_text().splitlines()
    ] == [1, 2]


def test_results_are_readable_by_others_as_the_umask_allows(tmp_path):
    import os
    import stat

    mask = os.umask(0o022)
    os.umask(mask)
    path = atomic_write_text(tmp_path / "r.json", "{}")
    assert stat.S_IMODE(path.stat().st_mode) == 0o666 & ~mask
