"""Every `pyanode reproduce` command on the one runner: a second run skips every finished trial
(trains nothing, identical results), an interrupted run resumes to the
results of one that never stopped, progress shows `[k/N]` with elapsed time and ETA, and the
output folder collects into a non-empty CSV."""

from __future__ import annotations

import json
import logging
import re
from pathlib import Path

import pytest

from pyanode.cli import main
from pyanode.cli._experiments import REPRODUCTIONS, reproduction
from pyanode.experiments import batch
from pyanode.experiments.dupont.curves import NFEConfig, Toy1dConfig
from pyanode.experiments.dupont.flows import FeaturesConfig, FlowsConfig
from pyanode.experiments.dupont.generalisation import GeneralisationConfig
from pyanode.experiments.dupont.images import ImagesConfig
from pyanode.experiments.store import (
    ITERATIONS,
    RESULT,
    collect,
    read_batch,
    read_csv,
    read_manifest,
)
from pyanode.experiments.table1 import Table1Config

REPO = Path(__file__).resolve().parents[1]

# tiny settings: each first run trains for a few seconds on one core
TINY = {
    "table1": Table1Config(epochs=10, nets=("resnet", "node", "anode"), n_points=192,
                           grid_size=16),
    "dupont-1d": Toy1dConfig(panels=("g1d", "spheres-1d"), models=("node", "resnet"), seeds=1,
                             epochs=3, g1d_epochs=20, g1d_points=20, n_inner=60, n_outer=120),
    "dupont-flows": FlowsConfig(panels=("g1d", "spheres-1d"), epochs=3, g1d_epochs=20,
                                g1d_points=16, n_inner=60, n_outer=120, n_probe=6, n_times=5),
    "dupont-features": FeaturesConfig(panels=("separable",), epochs=12, n_inner=60,
                                      n_outer=120, n_probe=20, snapshots=3),
    "dupont-nfe": NFEConfig(dim=1, seeds=2, epochs=4, n_inner=60, n_outer=120),
    "dupont-generalisation": GeneralisationConfig(seeds=1, epochs=6, map_epochs=6, n_inner=60,
                                                  n_outer=120, grid=8, eval_every=2),
    "dupont-images": ImagesConfig(filters=4, epochs=2, train_size=96, batch_size=32),
}  # fmt: skip
PROGRESS = re.compile(r"\[(\d+)/(\d+)\] \d+:\d\d elapsed, ETA \d+:\d\d: \w{12} ")


def _stored(out: Path) -> dict[str, bytes]:
    """Every trial's result.json, as bytes, by trial id."""
    return {e["id"]: (out / e["id"] / RESULT).read_bytes() for e in read_manifest(out)}


def test_every_reproduction_has_a_tiny_config():
    assert set(TINY) == set(REPRODUCTIONS)


@pytest.mark.parametrize("name", list(TINY))
def test_a_second_run_skips_every_finished_trial(name, tmp_path, caplog, monkeypatch):
    experiment = reproduction(name)
    config = TINY[name]
    caplog.set_level(logging.INFO, logger="pyanode")
    first = experiment.run(config, tmp_path)
    n = len(first.report.ids)
    assert first.report.skipped == [] and len(first.report.ok) == n >= 2
    # progress: one line per trial, [k/N] with the elapsed time and the time left
    done = [PROGRESS.search(r.getMessage()) for r in caplog.records]
    assert [(int(m[1]), int(m[2])) for m in done if m] == [(k, n) for k in range(1, n + 1)]
    stored, summary = _stored(tmp_path), (tmp_path / "summary.json").read_bytes()

    def no_training(*args, **kwargs):
        raise AssertionError("a finished trial was run again")

    monkeypatch.setattr(batch, "execute_trial", no_training)
    second = experiment.run(config, tmp_path)
    assert second.report.skipped == first.report.ids and second.report.ok == first.report.ids
    assert _stored(tmp_path) == stored  # the same files, not rewritten
    assert (tmp_path / "summary.json").read_bytes() == summary
    assert second.summary == first.summary

    rows = collect(tmp_path)  # a reproduction's folder is a results folder like any other
    assert [r["trial_id"] for r in rows] == first.report.ids
    assert {r["status"] for r in rows} == {"ok"} and all(r["label"] for r in rows)


def test_cli_collect_writes_a_reproduction_as_a_non_empty_csv(tmp_path, capsys):
    argv = ["reproduce", "dupont-nfe", "--out", str(tmp_path), "--no-figures", "--dim", "1"]
    argv += ["--seeds", "1", "--epochs", "1", "--n-inner", "20", "--n-outer", "40"]
    assert main(argv) == 0
    assert main(["collect", str(tmp_path)]) == 0
    assert "2 trial(s) (2 ok)" in capsys.readouterr().out
    rows = read_csv(tmp_path / "results.csv")
    assert [r["label"] for r in rows] == [
        'panel="spheres-1d" model="node" seed=0',
        'panel="spheres-1d" model="anode" seed=0',
    ]
    assert all(float(r["train_loss"]) > 0 and r["model.kind"] for r in rows)
    # and a folder of several results folders: every trial below it
    assert main(["collect", str(tmp_path.parent), "--csv", str(tmp_path / "all.csv")]) == 0
    assert len(read_csv(tmp_path / "all.csv")) >= 2


def test_an_interrupted_reproduction_resumes_bit_identically(tmp_path, cli_killed_at):
    """`pyanode reproduce dupont-nfe` SIGKILLed in its second trial, then run again: the finished
    trial is kept, the interrupted one resumes from its checkpoint, and every trial ends with the
    weights and per-iteration records of a run that never stopped."""
    argv = ["reproduce", "dupont-nfe", "--no-figures", "--dim", "1", "--seeds", "2"]
    argv += ["--epochs", "3", "--n-inner", "40", "--n-outer", "80", "--checkpoint-every", "1"]
    assert main([*argv, "--out", str(tmp_path / "reference")]) == 0
    killed = tmp_path / "killed"
    # 120 points in batches of 64: 2 batches per epoch, 6 per trial; the kill comes before the
    # 10th batch, 3 batches into the second trial: mid-epoch
    cli_killed_at([*argv, "--out", killed], 10)
    entries = read_manifest(killed)
    assert (killed / entries[0]["id"] / RESULT).exists()
    assert not (killed / entries[1]["id"] / RESULT).exists()
    assert main([*argv, "--out", str(killed)]) == 0
    resumed = json.loads((killed / entries[1]["id"] / RESULT).read_text())
    assert (resumed["resumed_epoch"], resumed["resumed_batch"]) == (1, 1)
    for got, want in zip(read_batch(killed), read_batch(tmp_path / "reference"), strict=True):
        assert got.trial_id == want.trial_id
        assert got.result["params_sha256"] == want.result["params_sha256"]
        assert (got.folder / ITERATIONS).read_bytes() == (want.folder / ITERATIONS).read_bytes()
