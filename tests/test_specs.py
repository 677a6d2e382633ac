"""Specs validate on construction and round-trip through dict, JSON and TOML."""

import pytest

from pyanode import ModelSpec, RunSpec, SolverSpec, SpecError, TrainSpec
from pyanode.experiments.store import trial_id


def test_defaults_round_trip_through_json_and_toml():
    spec = RunSpec(
        dataset="concentric-spheres",
        dataset_kwargs={"dim": 2},
        model=ModelSpec(kind="anode", augment_dim=5, hidden=16),
        solver=SolverSpec(solver="tsit5", rtol=1e-4, atol=1e-6, gradient="adjoint"),
        train=TrainSpec(epochs=3, lr=3e-3, seed=7, threads=1),
    )
    assert RunSpec.from_json(spec.to_json()) == spec
    assert RunSpec.from_toml(spec.to_toml()) == spec
    assert RunSpec.from_dict(spec.to_dict()) == spec


def test_toml_leaves_out_unset_optionals():
    text = RunSpec().to_toml()
    keys = {line.split(" = ")[0] for line in text.splitlines()}
    assert "dt" not in keys and "threads" not in keys
    assert RunSpec.from_toml(text) == RunSpec()


@pytest.mark.parametrize(
    ("make", "match"),
    [
        (
            lambda: ModelSpec(kind="nodee"),
            r"model.kind='nodee' is not known; accepted: resnet, node",
        ),
        (lambda: ModelSpec(activation="gelu"), r"model.activation='gelu' is not known"),
        (lambda: ModelSpec(hidden=0), r"model.hidden must be an integer >= 1, got 0"),
        (
            lambda: ModelSpec(hidden=3.5),
            r"model.hidden must be an integer >= 1, got 3.5 of type float",
        ),
        (lambda: ModelSpec(kind="anode"), r"augment_dim must be > 0 for kind 'anode'"),
        (lambda: SolverSpec(solver="dopri"), r"solver.solver='dopri' is not known; accepted:"),
        (lambda: SolverSpec(rtol=-1e-3), r"solver.rtol must be a finite number > 0, got -0.001"),
        (lambda: SolverSpec(rtol=1e-20), r"below machine precision"),
        (
            lambda: SolverSpec(atol=float("nan")),
            r"solver.atol must be a finite number >= 0, got nan",
        ),
        (lambda: SolverSpec(gradient="adjoin"), r"solver.gradient='adjoin' is not known"),
        (lambda: SolverSpec(solver="rk4"), r"'rk4' has no error estimate.*set solver.dt"),
        (lambda: SolverSpec(max_steps=0), r"solver.max_steps must be an integer >= 1, got 0"),
        (lambda: TrainSpec(batch_size=-1), r"train.batch_size must be an integer >= 1, got -1"),
        (lambda: TrainSpec(lr=0), r"train.lr must be a finite number > 0, got 0"),
        (
            lambda: TrainSpec(device="tpu"),
            r"train.device='tpu' is not a torch device; examples: cpu, cuda, cuda:1, mps",
        ),
        (lambda: RunSpec(backend="jax"), r"run.backend='jax' is not known"),
        (
            lambda: RunSpec(test_fraction=1.0),
            r"run.test_fraction must be a finite number >= 0 and < 1, got 1.0",
        ),
        (lambda: ModelSpec(readout="none"), r"model.readout='none' is not known; accepted: linear"),
        (
            lambda: TrainSpec(seed=2**32),
            r"train.seed must be an integer >= 0 and <= 4294967295, got 4294967296",
        ),
        (
            lambda: RunSpec(test_kwargs={"seed": 1}),
            r"run: test_fraction and test_kwargs both make a test set; set one",
        ),
        (
            lambda: RunSpec(test_fraction=0, test_kwargs={"seed": 1}, test_slice=(0, 1)),
            r"test_kwargs and test_slice both make a test set",
        ),
        (lambda: RunSpec(test_fraction=0, test_slice=(0,)), r"run.test_slice must be two angles"),
        (lambda: RunSpec(train_size=0), r"run.train_size must be an integer >= 1, got 0"),
        (lambda: RunSpec(split_seed=-1), r"run.split_seed must be an integer >= 0"),
    ],
)
def test_impossible_values_name_the_field(make, match):
    with pytest.raises(SpecError, match=match):
        make()


def test_unknown_keys_raise_never_warn():
    with pytest.raises(SpecError, match=r"unknown key\(s\) widht in \[model\]; accepted: .*hidden"):
        RunSpec.from_dict({"model": {"widht": 3}})
    with pytest.raises(SpecError, match=r"unknown key\(s\) epoch in \[run\]"):
        RunSpec.from_dict({"epoch": 3})
    with pytest.raises(SpecError, match=r"unknown field\(s\) rtoll for SolverSpec"):
        SolverSpec().replace(rtoll=1e-3)


def test_malformed_toml_is_a_spec_error():
    with pytest.raises(SpecError, match="malformed TOML"):
        RunSpec.from_toml("[model\nkind = 'node'")


def test_fixed_step_solver_with_dt_is_accepted():
    assert not SolverSpec(solver="rk4", dt=0.05).adaptive
    assert SolverSpec(solver="tsit5").adaptive


def test_solver_aliases_are_stored_by_their_canonical_name():
    """`dopri5` (torchdiffeq's name) is `dp5`: the same spec, the same trial."""
    assert SolverSpec(solver="dopri5") == SolverSpec(solver="dp5")
    assert RunSpec.from_dict({"solver": {"solver": "dopri5"}}).solver.solver == "dp5"


def test_the_data_fields_round_trip():
    """The independent draw of Table 1, the slice-removed split of Dupont Fig. 11c, a subset."""
    spec = RunSpec(
        dataset="concentric-spheres",
        test_fraction=0,
        test_slice=[0, 0.5],
        train_size=100,
        split_seed=3,
        model=ModelSpec(readout="flow"),
    )
    assert spec.test_slice == (0.0, 0.5)  # stored as a tuple of floats
    assert RunSpec.from_toml(spec.to_toml()) == spec
    assert RunSpec.from_json(spec.to_json()) == spec
    draw = RunSpec(test_fraction=0, test_kwargs={"seed": 1000})
    assert RunSpec.from_toml(draw.to_toml()) == draw


def test_devices_are_parsed_by_torch():
    for device in ("cpu", "cuda", "cuda:1", "mps", "cpu:0"):
        assert TrainSpec(device=device).device == device


@pytest.mark.parametrize("text", ["", "nope", "[]", None, b"\xff", '{"model": 3}'])
def test_run_spec_from_json_raises_spec_error(text):
    with pytest.raises(SpecError, match=r"malformed JSON|must be a table"):
        RunSpec.from_json(text)


def test_the_arguments_of_a_frozen_spec_cannot_be_changed():
    spec = RunSpec(dataset="concentric-spheres", dataset_kwargs={"dim": 2, "r1": 0.5},
                   test_fraction=0, test_kwargs={"seed": 1000})  # fmt: skip
    before = trial_id(spec)
    for change in (lambda d: d.__setitem__("dim", 3), lambda d: d.update(dim=3),
                   lambda d: d.pop("dim"), lambda d: d.clear()):  # fmt: skip
        for kwargs in (spec.dataset_kwargs, spec.test_kwargs):
            with pytest.raises(TypeError, match=r"spec\.replace\(dataset_kwargs="):
                change(kwargs)
    assert trial_id(spec) == before and spec.dataset_kwargs == {"dim": 2, "r1": 0.5}
    changed = spec.replace(dataset_kwargs={**spec.dataset_kwargs, "dim": 3})
    assert changed.dataset_kwargs["dim"] == 3 and trial_id(changed) != before
    assert RunSpec.from_dict(spec.to_dict()) == spec
    spec.to_dict()["dataset_kwargs"]["dim"] = 5  # a plain copy, not the spec's own
