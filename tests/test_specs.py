"""Specs validate on construction and round-trip through dict, JSON and TOML."""

import pytest

from pyanode import ModelSpec, RunSpec, SolverSpec, SpecError, TrainSpec


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
    assert "dt" not in text and "threads" not in text
    assert RunSpec.from_toml(text) == RunSpec()


@pytest.mark.parametrize(
    ("make", "match"),
    [
        (
            lambda: ModelSpec(kind="nodee"),
            r"model.kind='nodee' is not known; accepted: resnet, node",
        ),
        (lambda: ModelSpec(activation="gelu"), r"model.activation='gelu' is not known"),
        (lambda: ModelSpec(hidden=0), r"model.hidden must be finite and > 0, got 0"),
        (lambda: ModelSpec(hidden=3.5), r"model.hidden must be an integer, got 3.5"),
        (lambda: ModelSpec(kind="anode"), r"augment_dim must be > 0 for kind 'anode'"),
        (lambda: SolverSpec(solver="dopri"), r"solver.solver='dopri' is not known; accepted:"),
        (lambda: SolverSpec(rtol=-1e-3), r"solver.rtol must be finite and > 0, got -0.001"),
        (lambda: SolverSpec(rtol=1e-20), r"below machine precision"),
        (lambda: SolverSpec(atol=float("nan")), r"solver.atol must be finite"),
        (lambda: SolverSpec(gradient="adjoin"), r"solver.gradient='adjoin' is not known"),
        (lambda: SolverSpec(solver="rk4"), r"'rk4' has no error estimate.*set solver.dt"),
        (lambda: SolverSpec(max_steps=0), r"solver.max_steps must be finite and > 0"),
        (lambda: TrainSpec(batch_size=-1), r"train.batch_size must be finite and > 0, got -1"),
        (lambda: TrainSpec(lr=0), r"train.lr must be finite and > 0, got 0"),
        (lambda: TrainSpec(device="tpu"), r"train.device='tpu' is not known; accepted: cpu, cuda"),
        (lambda: RunSpec(backend="jax"), r"run.backend='jax' is not known"),
        (lambda: RunSpec(test_fraction=1.0), r"run.test_fraction must be in \[0, 1\)"),
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
