"""The results store: whole-or-nothing writes, checkpoints read with weights_only, RNG states that
round-trip, `result.json` written last, and every read checked against the trial's id."""

from __future__ import annotations

import json
import os
import random

import numpy as np
import pytest
import torch

from pyanode import ModelSpec, RunSpec, SolverSpec, SpecError, TrainSpec
from pyanode.experiments import store
from pyanode.experiments.runner import (
    Record,
    RunOptions,
    Trial,
    capture_rng_states,
    load_checkpoint,
    load_fitted,
    restore_rng_states,
    rng_scope,
    run_trial,
    save_checkpoint,
    seeded_rng_states,
)
from pyanode.experiments.store import (
    CHECKPOINT,
    HISTORY,
    RESULT,
    SPEC,
    TRIAL,
    WEIGHTS,
    atomic_write,
    atomic_write_text,
    trial_id,
)

RUN = RunSpec(
    dataset="concentric-spheres",
    dataset_kwargs={"n_inner": 30, "n_outer": 60},
    model=ModelSpec(hidden=4),
    solver=SolverSpec(solver="rk4", dt=0.25),
    train=TrainSpec(epochs=2, batch_size=16),
)
RUN_ID = trial_id(RUN)


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
    save_checkpoint(path, RUN_ID, state)

    def crashing_save(obj, f):
        f.write(b"\x80\x02 partial pickle")
        raise KeyboardInterrupt  # killed mid-write

    monkeypatch.setattr(torch, "save", crashing_save)
    with pytest.raises(KeyboardInterrupt):
        save_checkpoint(path, RUN_ID, {"epoch": 2, "batch": 0, "w": torch.zeros(4)})
    monkeypatch.undo()
    payload = load_checkpoint(path, RUN_ID)
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
    torch.save({"format": 2, "trial_id": RUN_ID, "trainer": _Payload(str(marker))}, path)
    with pytest.raises(SpecError, match=r"checkpoint\.pt cannot be read: .*Weights only load"):
        load_checkpoint(path)
    assert not marker.exists()


def test_a_truncated_checkpoint_is_refused(tmp_path):
    path = save_checkpoint(tmp_path / CHECKPOINT, RUN_ID, {"epoch": 0})
    path.write_bytes(path.read_bytes()[:100])
    with pytest.raises(SpecError, match=r"checkpoint\.pt cannot be read"):
        load_checkpoint(path)


def test_rng_states_round_trip_through_a_checkpoint(tmp_path):
    torch.manual_seed(7)
    np.random.seed(7)
    random.seed(7)
    torch.rand(3), np.random.rand(3), random.random()
    path = save_checkpoint(tmp_path / CHECKPOINT, RUN_ID, {"epoch": 0})
    want = (
        torch.rand(5),
        np.random.rand(5),
        np.random.normal(),
        [random.random() for _ in range(5)],
    )
    torch.manual_seed(99), np.random.seed(99), random.seed(99)
    restore_rng_states(load_checkpoint(path, RUN_ID)["rng"])
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
    original = store.atomic_write  # every file of a trial, the checkpoint too, goes through it

    def record(path, *args):
        written.append(os.path.basename(path))
        return original(path, *args)

    monkeypatch.setattr(store, "atomic_write", record)
    rows_seen = []

    def count_rows(trainer):
        text = (tmp_path / HISTORY).read_text() if (tmp_path / HISTORY).exists() else ""
        rows_seen.append(len(text.splitlines()))
        assert not (tmp_path / RESULT).exists()

    result = run_trial(RUN, tmp_path, options=RunOptions(checkpoint_every=2), on_batch=count_rows)
    # 72 training points in batches of 16: 5 batches per epoch; an epoch's row is stored right
    # after the epoch (the hook of its last batch runs just before)
    assert rows_seen == [0, 0, 0, 0, 0, 1, 1, 1, 1, 1]
    assert written[:2] == [SPEC, TRIAL]  # the claim
    # per epoch: checkpoints after batches 2 and 4, then the epoch's checkpoint and history
    per_epoch = [CHECKPOINT, CHECKPOINT, CHECKPOINT, HISTORY]
    assert written[2:-3] == per_epoch * 2
    assert written[-3:] == [HISTORY, WEIGHTS, RESULT]  # the result last
    stored = json.loads((tmp_path / RESULT).read_text())
    assert stored == result and stored["status"] == "ok"
    assert stored["schema_version"] == store.SCHEMA_VERSION and stored["trial_id"] == RUN_ID
    assert [
        json.loads(line)["epoch"] for line in (tmp_path / HISTORY).read_text().splitlines()
    ] == [1, 2]


def test_stored_weights_rebuild_the_trained_model(tmp_path):
    """weights.npy is the flat float32 vector of the final parameters: loading it gives the
    trained model's predictions exactly, and its sha256 is the result's params_sha256."""
    from pyanode.experiments.runner import run

    trained = run(RUN, progress=False)  # in memory
    result = run_trial(RUN, tmp_path)
    assert result["params_sha256"] == trained.metrics["params_sha256"]
    loaded = load_fitted(tmp_path)
    x = trained.test_data.x
    assert np.array_equal(loaded.predict(x), trained.fitted.predict(x))

    def timeless(history):
        return [{k: v for k, v in row.items() if k != "seconds"} for row in history]

    assert timeless(loaded.history) == timeless(json.loads(json.dumps(trained.fitted.history)))
    weights = np.load(tmp_path / WEIGHTS)
    assert weights.dtype == np.float32 and weights.size == result["n_parameters"]


def test_a_folder_holding_another_run_is_refused_unless_overwrite(tmp_path):
    """Issue 16 (2): a second run into the folder of a first one does not replace it silently."""
    first = run_trial(RUN, tmp_path)
    other = RUN.replace(train=RUN.train.replace(seed=5))
    with pytest.raises(SpecError, match=rf"holds another run \(trial {RUN_ID}, not "
                       rf"{trial_id(other)}\); use another folder, or --overwrite"):  # fmt: skip
        run_trial(other, tmp_path)
    assert json.loads((tmp_path / RESULT).read_text()) == first  # untouched
    second = run_trial(other, tmp_path, options=RunOptions(overwrite=True))
    assert second["trial_id"] == trial_id(other) != first["trial_id"]
    assert store.stored_id(tmp_path) == trial_id(other)


def test_every_read_checks_the_trial_id(tmp_path):
    """Issue 16 (2, 10): a result copied from another trial, or a spec.toml edited after the
    trial ran, is refused instead of being read as this trial's."""
    run_trial(RUN, tmp_path / "a")
    other = RUN.replace(train=RUN.train.replace(seed=5))
    run_trial(other, tmp_path / "b")
    (tmp_path / "b" / RESULT).write_bytes((tmp_path / "a" / RESULT).read_bytes())
    with pytest.raises(SpecError, match=rf"belongs to trial {RUN_ID!r}, .*mixes two runs"):
        run_trial(other, tmp_path / "b")
    edited = (tmp_path / "a" / SPEC).read_text().replace("lr = 0.001", "lr = 0.5")
    (tmp_path / "a" / SPEC).write_text(edited)
    with pytest.raises(SpecError, match=r"spec\.toml does not match the trial id .*edited"):
        store.read_result(tmp_path / "a")
    (tmp_path / "b" / SPEC).unlink()  # a result without the spec it belongs to
    with pytest.raises(SpecError, match=r"is not a complete trial folder"):
        store.read_result(tmp_path / "b")


def test_a_result_of_another_schema_version_is_refused(tmp_path):
    run_trial(RUN, tmp_path)
    result = json.loads((tmp_path / RESULT).read_text())
    (tmp_path / RESULT).write_text(json.dumps({**result, "schema_version": 99}))
    with pytest.raises(SpecError, match=r"result\.json is not a pyanode trial file of "
                       r"schema_version 1 \(found 99\)"):  # fmt: skip
        store.read_result(tmp_path)


def test_a_checkpoint_of_another_trial_is_refused(tmp_path):
    path = save_checkpoint(tmp_path / CHECKPOINT, RUN_ID, {"epoch": 0})
    with pytest.raises(SpecError, match=rf"belongs to another run \(trial {RUN_ID}, not x\)"):
        load_checkpoint(path, "x")


def test_the_record_description_is_part_of_the_trial_id():
    """Keeping other arrays is another trial (it is stored elsewhere); recording nothing extra
    keeps the id a hash of the spec alone, as for a sweep's trials."""
    plain, recorded = Trial(RUN), Trial(RUN, record=Record(iterations=True))
    assert plain.id == RUN_ID != recorded.id
    assert Trial(RUN, {"any": "key"}).id == RUN_ID  # the key only names it
    with pytest.raises(SpecError, match="record.arrays must be a module-level function"):
        Record(arrays=lambda fitted, train, test: {})


def test_results_are_readable_by_others_as_the_umask_allows(tmp_path):
    import os
    import stat

    mask = os.umask(0o022)
    os.umask(mask)
    path = atomic_write_text(tmp_path / "r.json", "{}")
    assert stat.S_IMODE(path.stat().st_mode) == 0o666 & ~mask
