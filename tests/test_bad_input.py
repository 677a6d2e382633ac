"""Bad input fails at the boundary with one clear message naming the field, the value received and
what is accepted: through the Python API (pytest.raises(match=...)) and through the CLI (exit
code 2 and a one-line message)."""

from __future__ import annotations

import re
from pathlib import Path

import numpy as np
import pytest
import torch

from pyanode import DataError, ModelSpec, RunSpec, SolverSpec, SpecError, TrainSpec
from pyanode.cli import main
from pyanode.data import Dataset, load_dataset
from pyanode.experiments.engines import DaskEngine, LocalPool, get_engine
from pyanode.experiments.runner import RunOptions, load_checkpoint, run_trial, save_checkpoint
from pyanode.experiments.store import claim, trial_id
from pyanode.experiments.sweep import Sweep, load_sweep, run_sweep

X = np.zeros((5, 2), np.float32)
LABELS = np.array([0, 1, 0, 1, 0], np.int64)


def _with_nan() -> np.ndarray:
    x = X.copy()
    x[3, 1] = np.nan
    return x


def _with_inf() -> np.ndarray:
    x = X.copy()
    x[1, 0] = np.inf
    return x


def _sweep(grid: str, base: str = "") -> Sweep:
    return Sweep.from_toml(f"[base]\n{base}\n[grid]\n{grid}\n")


# (what, call, error type, message pattern)
API_CASES = [
    # data
    (
        "NaN in x",
        lambda: Dataset(_with_nan(), LABELS, "t", "classification"),
        DataError,
        r"Dataset\.x must be finite, got NaN or inf in 1 sample\(s\), first at index 3",
    ),
    (
        "inf in x",
        lambda: Dataset(_with_inf(), LABELS, "t", "classification"),
        DataError,
        r"Dataset\.x must be finite, got NaN or inf in 1 sample\(s\), first at index 1",
    ),
    (
        "inf in regression targets",
        lambda: Dataset(
            X, np.array([[0.0], [np.inf], [0], [0], [0]], np.float32), "t", "regression"
        ),
        DataError,
        r"Dataset\.y must hold finite targets, got 1 NaN or inf value\(s\)",
    ),
    (
        "x of one dimension",
        lambda: Dataset(np.zeros(5, np.float32), LABELS, "t", "classification"),
        DataError,
        r"Dataset\.x must have shape \(N, D\) or \(N, \.\.\.\) \(ndim >= 2\), got shape \(5,\)",
    ),
    (
        "y shorter than x",
        lambda: Dataset(X, LABELS[:4], "t", "classification"),
        DataError,
        r"Dataset\.y must have len\(y\) == len\(x\) == 5, got y of shape \(4,\)",
    ),
    (
        "label out of range",
        lambda: Dataset(X, np.array([0, 1, 2, 0, 1]), "t", "classification", {"n_classes": 2}),
        DataError,
        r"Dataset\.y must hold labels < meta\['n_classes'\] = 2, got maximum 2",
    ),
    (
        "negative label",
        lambda: Dataset(X, np.array([0, 1, -1, 0, 1]), "t", "classification"),
        DataError,
        r"Dataset\.y must hold class labels >= 0 .*got minimum -1",
    ),
    (
        "unknown dataset",
        lambda: load_dataset("spheres"),
        DataError,
        r"dataset 'spheres' is not known; accepted: concentric-spheres, .*three-spheres",
    ),
    (
        "non-positive dataset size",
        lambda: load_dataset("concentric-spheres", n_inner=0),
        DataError,
        r"n_inner must be an integer >= 1, got 0",
    ),
    # specs
    (
        "unknown model kind",
        lambda: ModelSpec(kind="nodee"),
        SpecError,
        r"model\.kind='nodee' is not known; accepted: resnet, node, anode, il-node",
    ),
    (
        "unknown solver",
        lambda: SolverSpec(solver="dopri"),
        SpecError,
        r"solver\.solver='dopri' is not known; accepted: euler, midpoint, rk4, bosh3, dp5, tsit5",
    ),
    (
        "zero rtol",
        lambda: SolverSpec(rtol=0.0),
        SpecError,
        r"solver\.rtol must be a finite number > 0, got 0\.0",
    ),
    (
        "negative atol",
        lambda: SolverSpec(atol=-1e-3),
        SpecError,
        r"solver\.atol must be a finite number >= 0, got -0\.001",
    ),
    (
        "zero width",
        lambda: ModelSpec(hidden=0),
        SpecError,
        r"model\.hidden must be an integer >= 1, got 0",
    ),
    (
        "NaN learning rate",
        lambda: TrainSpec(lr=float("nan")),
        SpecError,
        r"train\.lr must be a finite number > 0, got nan",
    ),
    (
        "fixed-step solver without dt",
        lambda: SolverSpec(solver="rk4"),
        SpecError,
        r"solver\.solver='rk4' has no error estimate, so it needs a fixed step: set solver\.dt",
    ),
    (
        "unknown key in a spec file",
        lambda: RunSpec.from_toml("[model]\nwidht = 3\n"),
        SpecError,
        r"unknown key\(s\) widht in \[model\]; accepted: activation, augment_dim, .*hidden",
    ),
    # sweep configs
    (
        "malformed TOML",
        lambda: Sweep.from_toml("[base\ndataset = 'x'\n", source="s.toml"),
        SpecError,
        r"s\.toml: malformed TOML: Expected '\]' at the end of a table declaration "
        r"\(at line 1, column 6\)",
    ),
    (
        "unknown table in a sweep config",
        lambda: Sweep.from_toml('[grids]\n"train.seed" = [0]\n', source="s.toml"),
        SpecError,
        r"s\.toml: unknown table\(s\) grids; accepted: base, grid",
    ),
    (
        "unknown key in [base]",
        lambda: Sweep.from_toml("[base.solver]\nrtoll = 1e-3\n", source="s.toml"),
        SpecError,
        r"s\.toml: \[base\]: unknown key\(s\) rtoll in \[solver\]; accepted: atol, dt, gradient",
    ),
    (
        "unknown field in a grid key",
        lambda: _sweep('"model.widht" = [8, 16]'),
        SpecError,
        r"\[grid\] key 'model\.widht': 'widht' is not a field of \[model\]; accepted: kind, hidden",
    ),
    (
        "unknown grid key",
        lambda: _sweep('"optimizer.lr" = [1e-3]'),
        SpecError,
        r"\[grid\] key 'optimizer\.lr' is not known; accepted: dataset, dataset_kwargs, "
        r"test_fraction, test_kwargs, test_slice, train_size, split_seed, backend, "
        r"dataset_kwargs\.<argument>, run, model, model\.<field>",
    ),
    (
        "grid value that is not a list",
        lambda: _sweep('"train.seed" = 3'),
        SpecError,
        r"\[grid\] 'train\.seed' must be a non-empty list of values, got 3",
    ),
    (
        "empty grid list",
        lambda: _sweep('"train.seed" = []'),
        SpecError,
        r"\[grid\] 'train\.seed' must be a non-empty list of values, got \[\]",
    ),
    (
        "repeated grid value",
        lambda: _sweep('"solver.rtol" = [1e-3, 1e-4, 1e-3]'),
        SpecError,
        r"\[grid\] 'solver\.rtol' lists the value 0\.001 twice",
    ),
    (
        "table axis given a scalar",
        lambda: _sweep('model = ["node"]'),
        SpecError,
        r"\[grid\] 'model' takes tables of fields, got 'node'",
    ),
    (
        "grid point with a negative tolerance",
        lambda: _sweep('"solver.rtol" = [1e-3, -1e-4]'),
        SpecError,
        r"\[grid\] point solver\.rtol=-0\.0001: solver\.rtol must be a finite number > 0, "
        r"got -0\.0001",
    ),
    (
        "grid point with a tolerance of the wrong type",
        lambda: _sweep('"solver.atol" = ["1e-6"]'),
        SpecError,
        r"\[grid\] point solver\.atol=\"1e-6\": solver\.atol must be a finite number >= 0, "
        r"got '1e-6' of type str",
    ),
    (
        "grid with an unknown dataset",
        lambda: _sweep('dataset = ["three-spheres", "four-spheres"]'),
        DataError,
        r"\[grid\] point dataset=\"four-spheres\": dataset 'four-spheres' is not known; accepted: ",
    ),
    (
        "grid with an unknown dataset argument",
        lambda: _sweep('"dataset_kwargs.radius" = [1.0]', base='dataset = "concentric-spheres"'),
        DataError,
        r"dataset 'concentric-spheres' got unknown keyword argument\(s\) radius; accepted: dim, ",
    ),
    (
        "gradient method the torch backend lacks",
        lambda: _sweep('"solver.gradient" = ["quadrature-adjoint"]'),
        SpecError,
        r"solver\.gradient='quadrature-adjoint' is only in the Julia backend; the torch backend "
        r"has: backprop, adjoint",
    ),
    # sweep and engine options
    (
        "unknown failure policy",
        lambda: run_sweep([], "unused", options=RunOptions(on_failure="ignore")),
        SpecError,
        r"on_failure='ignore' is not known; accepted: raise, record",
    ),
    (
        "zero checkpoint interval",
        lambda: run_trial(RunSpec(), "unused", options=RunOptions(checkpoint_every=0)),
        SpecError,
        r"checkpoint_every must be an integer >= 1, got 0",
    ),
    (
        "zero workers",
        lambda: LocalPool(workers=0),
        SpecError,
        r"workers must be an integer >= 1, got 0",
    ),
    (
        "fractional threads",
        lambda: DaskEngine(threads=1.5),
        SpecError,
        r"threads must be an integer >= 1, got 1\.5",
    ),
    (
        "workers for a remote Dask cluster",
        lambda: get_engine("dask", workers=4, scheduler="tcp://h:8786"),
        SpecError,
        r"workers=4 is for a LocalCluster; with scheduler='tcp://h:8786' the cluster's own "
        r"settings decide: leave workers unset",
    ),
    (
        "unknown engine",
        lambda: get_engine("slurm"),
        SpecError,
        r"engine='slurm' is not known; accepted: local, dask, inline",
    ),
    (
        "scheduler without dask",
        lambda: get_engine("local", scheduler="tcp://h:8786"),
        SpecError,
        r"scheduler='tcp://h:8786' needs engine 'dask', got engine 'local'",
    ),
]


@pytest.mark.parametrize(
    ("call", "error", "pattern"),
    [case[1:] for case in API_CASES],
    ids=[case[0] for case in API_CASES],
)
def test_bad_input_is_rejected_with_its_message(call, error, pattern):
    with pytest.raises(error, match=pattern):
        call()


def test_there_are_at_least_15_distinct_bad_inputs():
    assert len({case[0] for case in API_CASES}) == len(API_CASES) >= 15


def test_a_checkpoint_of_another_run_is_refused(tmp_path):
    path = save_checkpoint(tmp_path / "c.pt", trial_id(RunSpec()), {"epoch": 0})
    with pytest.raises(SpecError, match=r"c\.pt' belongs to another run .*delete it"):
        load_checkpoint(path, trial_id(RunSpec(train=TrainSpec(seed=1))))


def test_a_file_that_is_not_a_checkpoint_is_refused(tmp_path):
    torch.save({"weights": torch.zeros(2)}, tmp_path / "w.pt")
    with pytest.raises(SpecError, match=r"w\.pt' is not a pyanode checkpoint of format 2, got"):
        load_checkpoint(tmp_path / "w.pt")


def test_a_trial_folder_of_another_run_is_refused(tmp_path):
    claim(tmp_path, RunSpec(train=TrainSpec(seed=1)), {})
    with pytest.raises(SpecError, match=r"holds another run \(trial \w+, not \w+\); use another"):
        run_trial(RunSpec(), tmp_path)


# -- the CLI: exit code 2 and one line ------------------------------------------------------------
CLI_CASES = [
    ("malformed TOML", "[base\n", [], r"malformed TOML: Expected '\]' .*\(at line 1, column 6\)"),
    ("unknown key", "[base.model]\nwidht = 3\n", [], r"unknown key\(s\) widht in \[model\]"),
    (
        "negative tolerance",
        '[grid]\n"solver.rtol" = [-1.0]\n',
        [],
        r"solver\.rtol must be a finite",
    ),
    ("unknown dataset", '[base]\ndataset = "nope"\n', [], r"dataset 'nope' is not known"),
    ("zero workers", "", ["--workers", "0"], r"workers must be an integer >= 1, got 0"),
    ("scheduler, local", "", ["--scheduler", "tcp://h:1"], r"needs engine 'dask'"),
]


def _cli_error(capsys, argv: list[str]) -> str:
    with pytest.raises(SystemExit) as exit_info:
        main(argv)
    assert exit_info.value.code == 2
    err = capsys.readouterr().err
    assert err.endswith("\n") and err.count("\n") == 1, err  # one line
    return err


@pytest.mark.parametrize(
    ("text", "options", "pattern"),
    [case[1:] for case in CLI_CASES],
    ids=[case[0] for case in CLI_CASES],
)
def test_cli_sweep_rejects_bad_input_with_exit_code_2(tmp_path, capsys, text, options, pattern):
    config = tmp_path / "sweep.toml"
    config.write_text(text)
    err = _cli_error(capsys, ["sweep", str(config), "--out", str(tmp_path / "o"), *options])
    assert err.startswith("pyanode sweep: error: ")
    assert re.search(pattern, err), err
    assert not (tmp_path / "o").exists()  # nothing ran


def test_cli_sweep_missing_config_exits_2(tmp_path, capsys):
    err = _cli_error(capsys, ["sweep", str(tmp_path / "none.toml"), "--out", str(tmp_path)])
    assert re.search(r"error: config '.*none\.toml' cannot be read: No such file or directory",
                     err), err  # fmt: skip


def test_cli_collect_missing_folder_exits_2(tmp_path, capsys):
    err = _cli_error(capsys, ["collect", str(tmp_path / "nowhere")])
    assert re.search(r"pyanode collect: error: no results folder '.*nowhere'", err), err


def test_cli_train_rejects_a_zero_width(tmp_path, capsys):
    err = _cli_error(capsys, ["train", "--hidden", "0", "--epochs", "1"])
    assert re.search(r"pyanode train: error: model\.hidden must be an integer >= 1, got 0", err)


def test_load_sweep_names_the_file(tmp_path):
    path = Path(tmp_path, "bad.toml")
    path.write_text('[grid]\n"train.seed" = 1\n')
    with pytest.raises(SpecError, match=r"bad\.toml: \[grid\] 'train\.seed' must be a non-empty"):
        load_sweep(path)
