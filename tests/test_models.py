"""pyanode.torch._models and _networks: models built from specs (shapes, parameter layout,
augmentation, the flat weight order), every kind forward and backward with both gradient
methods, and width matching."""

import numpy as np
import pytest
import torch
from torch import nn

from pyanode import ModelSpec, SolverSpec, SpecError
from pyanode._names import MODEL_KINDS
from pyanode.torch import (
    MODELS,
    Augment,
    NeuralODE,
    build_model,
    count_parameters,
    flat_parameters,
    match_width,
    set_flat_parameters,
)

TIGHT = SolverSpec(solver="dp5", rtol=1e-9, atol=1e-9)


def test_augment_appends_zeros_for_vectors_and_channels():
    x = torch.randn(4, 2)
    z = Augment(3)(x)
    assert z.shape == (4, 5)
    assert torch.equal(z[:, :2], x) and not z[:, 2:].any()
    img = torch.randn(2, 1, 8, 8)
    assert Augment(2)(img).shape == (2, 3, 8, 8)


def test_node_parameter_count_matches_dupont_appendix_e():
    # (d+1)->h->h->d MLP plus a linear head d->k
    d, h, k = 2, 32, 3
    mlp = (d + 1) * h + h + h * h + h + h * d + d
    assert count_parameters(ModelSpec(kind="node", hidden=h), d, k) == mlp + d * k + k
    p = 5
    mlp_aug = (d + p + 1) * h + h + h * h + h + h * (d + p) + d + p
    spec = ModelSpec(kind="anode", hidden=h, augment_dim=p)
    assert count_parameters(spec, d, k) == mlp_aug + (d + p) * k + k


def test_same_seed_same_weights_without_touching_global_rng():
    spec = ModelSpec(kind="anode", augment_dim=2, hidden=8)
    state = torch.random.get_rng_state()
    a = flat_parameters(build_model(spec, 2, 3, seed=1))
    assert torch.equal(state, torch.random.get_rng_state())
    b = flat_parameters(build_model(spec, 2, 3, seed=1))
    c = flat_parameters(build_model(spec, 2, 3, seed=2))
    assert np.array_equal(a, b) and not np.array_equal(a, c)


def test_flat_order_is_row_major_weight_then_bias_in_forward_order():
    model = build_model(ModelSpec(kind="node", hidden=4), 2, 3, seed=0)
    v = flat_parameters(model)
    first = model.block.field.net[0]
    n_w = first.weight.numel()
    assert np.array_equal(v[:n_w], first.weight.detach().numpy().reshape(-1))
    assert np.array_equal(v[n_w : n_w + 4], first.bias.detach().numpy())
    assert np.array_equal(v[-3:], model.output_map.bias.detach().numpy())
    other = build_model(ModelSpec(kind="node", hidden=4), 2, 3, seed=5)
    set_flat_parameters(other, v)
    x = torch.randn(5, 2)
    with torch.no_grad():
        assert torch.allclose(other(x), model(x))
    with pytest.raises(ValueError, match=r"parameter vector must have shape \(\d+,\), got \(3,\)"):
        set_flat_parameters(other, np.zeros(3, np.float32))


@pytest.mark.parametrize("kind", ["node", "anode", "il-node", "data-controlled", "resnet"])
@pytest.mark.parametrize("gradient", ["backprop", "adjoint"])
def test_every_kind_runs_forward_and_backward(kind, gradient):
    spec = ModelSpec(kind=kind, hidden=8, augment_dim=2 if kind != "node" else 0)
    model = build_model(spec, 2, 3, SolverSpec(gradient=gradient), seed=0)
    x = torch.randn(6, 2)
    out = model(x)
    assert out.shape == (6, 3)
    out.square().sum().backward()
    grads = [p.grad for p in model.parameters()]
    assert all(g is not None and torch.isfinite(g).all() for g in grads)
    assert sum(g.abs().sum().item() for g in grads) > 0


def test_data_controlled_field_sees_the_input():
    model = build_model(ModelSpec(kind="data-controlled", hidden=8), 1, 1, seed=0)
    assert model.block.field.net[0].in_features == 1 + 1 + 1  # z, x, t
    x = torch.randn(4, 1, requires_grad=True)
    model(x).sum().backward()
    assert x.grad is not None and x.grad.abs().sum() > 0


def test_trajectories_start_at_the_input_and_end_at_the_features():
    model = build_model(ModelSpec(kind="anode", hidden=8, augment_dim=1), 2, 2, seed=0)
    assert isinstance(model, NeuralODE)
    x = torch.randn(3, 2)
    with torch.no_grad():
        traj = model.trajectories(x, torch.linspace(0, 1, 5, dtype=torch.float64))
        feats = model.features(x)
    assert traj.shape == (5, 3, 3)
    assert torch.allclose(traj[0, :, :2], x) and not traj[0, :, 2].any()
    # landing on the save times changes the step grid: agreement is to the solver tolerance
    assert torch.allclose(traj[-1], feats, atol=1e-2)


def test_the_model_table_has_one_builder_per_kind_in_the_name_tables_order():
    # explicit, not filled in as a side effect of importing the modules that define the kinds
    assert tuple(MODELS) == MODEL_KINDS
    for kind in MODEL_KINDS:
        spec = ModelSpec(kind=kind, hidden=4, augment_dim=1 if kind == "anode" else 0)
        model = MODELS[kind](spec, SolverSpec(solver="rk4", dt=0.5), 2, 3)
        with torch.no_grad():
            assert model(torch.randn(5, 2)).shape == (5, 3), kind


def test_kind_without_builder_is_a_spec_error(monkeypatch):
    monkeypatch.delitem(MODELS, "stacked")
    with pytest.raises(SpecError, match="model.kind='stacked' has no torch builder; available: "):
        build_model(ModelSpec(kind="stacked"), 2, 2)


# -- every kind, both gradient methods, to tight tolerances -------------------------------------
@pytest.mark.parametrize("kind", MODEL_KINDS)
def test_every_kind_runs_forward_and_backward_with_both_gradient_methods(kind, float64):
    # tanh: through ReLU's kinks the backsolve adjoint converges only slowly with the tolerance
    augment = 1 if kind == "anode" else 0
    spec = ModelSpec(kind=kind, hidden=6, activation="tanh", augment_dim=augment, n_pieces=2)
    x = torch.randn(8, 2, generator=torch.Generator().manual_seed(0))
    y = torch.arange(8) % 3
    grads = {}
    for gradient in ("backprop", "adjoint"):
        model = build_model(spec, 2, 3, TIGHT.replace(gradient=gradient), seed=0)
        loss = nn.functional.cross_entropy(model(x), y)
        loss.backward()
        grads[gradient] = [p.grad for p in model.parameters()]
        assert all(g is not None and torch.isfinite(g).all() for g in grads[gradient])
        assert sum(float(g.abs().sum()) for g in grads[gradient]) > 0
    for a, b in zip(grads["backprop"], grads["adjoint"], strict=True):
        torch.testing.assert_close(a, b, rtol=1e-5, atol=1e-7)


def test_data_controlled_gradient_flows_through_the_control_input(float64):
    # tanh: with ReLU's kinks the adaptive steps make z(1) only piecewise smooth at 1e-6 scale
    spec = ModelSpec(kind="data-controlled", hidden=6, activation="tanh")
    model = build_model(spec, 2, 3, TIGHT, seed=0)
    x = torch.randn(4, 2, requires_grad=True)
    c = torch.randn(4, 3)
    (model(x) * c).sum().backward()
    # the part that enters through the control path alone: x fixed in z(0), moved in the field
    block, head = model.block, model.output_map
    x0 = x.detach()

    def through_control(u: torch.Tensor) -> float:
        with torch.no_grad():
            return float((head(block(x0, u)) * c).sum())

    direction = torch.randn(4, 2)
    fd = (through_control(x0 + 1e-6 * direction) - through_control(x0 - 1e-6 * direction)) / 2e-6
    u = x0.clone().requires_grad_(True)
    (head(block(x0, u)) * c).sum().backward()
    assert float((u.grad * direction).sum()) == pytest.approx(fd, rel=1e-5)
    assert u.grad.abs().max() > 1e-4


# -- parameter matching ------------------------------------------------------------------------
def test_match_width_finds_the_closest_count(float64):
    spec = ModelSpec(kind="node")
    width, n = match_width(spec, 2, 3, 1300)
    counts = {w: w * w + 7 * w + 11 for w in range(1, 80)}  # NODE on R^2, 3 classes, by hand
    best = min(counts, key=lambda w: abs(counts[w] - 1300))
    assert (width, n) == (best, counts[best]) == (33, 1331)
    assert count_parameters(spec.replace(hidden=width), 2, 3) == n
    assert match_width(ModelSpec(kind="resnet"), 2, 3, 1300) == (33, 1298)  # Table 1: 33, 1.3k


def test_match_width_errors():
    with pytest.raises(SpecError, match=r"width 32 gives 1259 \(-3.2%\), width 33 gives 1331"):
        match_width(ModelSpec(kind="node"), 2, 3, 1300, tolerance=0.01)
    with pytest.raises(SpecError, match="budget must be an integer > 0, got 0"):
        match_width(ModelSpec(kind="node"), 2, 3, 0)
    with pytest.raises(SpecError, match=r"tolerance must be a number in \(0, 1\), got 1.5"):
        match_width(ModelSpec(kind="node"), 2, 3, 1300, tolerance=1.5)
