"""The fused path of MLPField: equal to autograd through the plain module, and gradchecked.

`solve(MLPField, ...)` evaluates the field through `MLPKernel` (hand-written forward and VJP,
one autograd node per solve); wrapping the field in a plain module sends the same solve
through autograd, which is the reference here (discretise-then-optimise: the gradients of the
same computed solution).
"""

from __future__ import annotations

import pytest
import torch
from problems import KERNEL_SETTINGS, twisting_field
from torch import nn

from pyanode.solvers import Adjoint, Backprop, Dopri5, PIController, solve
from pyanode.torch import MLPField
from pyanode.torch._fused import MLPKernel, stacks_records

GRADIENTS = (Backprop(), Adjoint(), Adjoint(seminorm=False))


class Plain(nn.Module):
    """The same field without the fused kernel: `solve` goes through autograd."""

    def __init__(self, field: MLPField):
        super().__init__()
        self.field = field

    def forward(self, t, y, args):
        return self.field(t, y, args)


def _field(act="relu", control_dim=0, time_dependent=True, dim=3, hidden=16, seed=0, scale=2.0):
    return twisting_field(
        dim,
        hidden,
        act=act,
        control_dim=control_dim,
        time_dependent=time_dependent,
        seed=seed,
        scale=scale,
    )


def _run(field, f, y0, x, gradient, **kwargs):
    """(ys, grads of y0, x and every parameter, stats) of a quadratic loss of the solve."""
    field.zero_grad()
    y0 = y0.detach().clone().requires_grad_()
    x = None if x is None else x.detach().clone().requires_grad_()
    sol = solve(f, y0, 0.0, 1.0, args=x, gradient=gradient, **kwargs)
    loss = (sol.ys**2).sum() + (sol.ys * torch.linspace(-1, 1, sol.ys.shape[-1])).sum()
    loss.backward()
    grads = [y0.grad] + ([] if x is None else [x.grad]) + [p.grad for p in field.parameters()]
    return sol.ys.detach(), grads, sol.stats


def _assert_equal(fused, plain, rtol):
    ys_f, grads_f, stats_f = fused
    ys_p, grads_p, stats_p = plain
    assert stats_f == stats_p  # the same steps: same NFE forward and backward
    torch.testing.assert_close(ys_f, ys_p, rtol=rtol, atol=rtol)
    for gf, gp in zip(grads_f, grads_p, strict=True):
        scale = gp.abs().max().item()
        assert scale > 0
        assert (gf - gp).abs().max().item() <= rtol * scale


SETTINGS = KERNEL_SETTINGS


@pytest.mark.parametrize("gradient", GRADIENTS, ids=repr)
@pytest.mark.parametrize("setting", SETTINGS, ids=str)
@pytest.mark.parametrize(
    ("act", "control_dim", "time_dependent"),
    [("relu", 0, True), ("tanh", 2, True), ("relu", 2, False), ("tanh", 0, False)],
)
def test_fused_equals_autograd(gradient, setting, act, control_dim, time_dependent, float64):
    field = _field(act, control_dim, time_dependent)
    gen = torch.Generator().manual_seed(1)
    y0 = torch.randn(5, 3, generator=gen)
    x = torch.randn(5, 2, generator=gen) if control_dim else None
    kwargs = SETTINGS[setting]
    fused = _run(field, field, y0, x, gradient, **kwargs)
    plain = _run(field, Plain(field), y0, x, gradient, **kwargs)
    assert fused[2].n_accepted >= 2
    # measured: at most 2e-12 relative (the adjoint's parameter sums run in another order)
    _assert_equal(fused, plain, rtol=1e-10)


def test_fused_path_is_taken(float64):
    field = _field()
    calls = []
    field.net[0].register_forward_hook(lambda *a: calls.append(1))
    y0 = torch.randn(4, 3, requires_grad=True)
    sol = solve(field, y0)
    assert calls == [] and type(sol.ys.grad_fn).__name__ == "_BackpropFunctionBackward"
    solve(Plain(field), y0)
    assert len(calls) == sol.stats.nfe_forward  # the plain path calls the module each time


def test_unsupported_activation_falls_back(float64):
    field = MLPField(3, 8, act="softplus")
    calls = []
    field.net[0].register_forward_hook(lambda *a: calls.append(1))
    assert field.fused_kernel(torch.zeros(4, 3), None) is None
    sol = solve(field, torch.randn(4, 3))
    assert len(calls) == sol.stats.nfe_forward > 0


def test_dtype_mismatch_falls_back_to_the_plain_error():
    field = MLPField(3, 8)  # float32 weights
    with pytest.raises(RuntimeError, match="dtype"):
        solve(field, torch.randn(4, 3, dtype=torch.float64))


@pytest.mark.parametrize("gradient", GRADIENTS, ids=repr)
def test_gradcheck_fused(gradient, float64):
    # tanh: a smooth field, so that finite differences do not straddle ReLU kinks
    field = _field("tanh", control_dim=2, dim=2, hidden=6, scale=1.5)
    gen = torch.Generator().manual_seed(2)
    y0 = torch.randn(3, 2, generator=gen, requires_grad=True)
    x = torch.randn(3, 2, generator=gen, requires_grad=True)
    tight = PIController(rtol=1e-9, atol=1e-9)

    def fn(y0, x, *params):
        return solve(field, y0, args=x, controller=tight, gradient=gradient, saveat=[0.4, 1.0]).ys

    inputs = (y0, x, *field.parameters())
    assert torch.autograd.gradcheck(fn, inputs, eps=1e-6, atol=1e-6, rtol=1e-6, fast_mode=True)


@pytest.mark.parametrize("act", ["relu", "tanh"])
def test_kernel_against_the_module(act, float64):
    # One evaluation and one VJP of the kernel (features-major) against autograd on the module.
    field = _field(act, control_dim=2, hidden=7)
    gen = torch.Generator().manual_seed(3)
    y = torch.randn(4, 3, generator=gen, requires_grad=True)
    x = torch.randn(4, 2, generator=gen, requires_grad=True)
    g = torch.randn(4, 3, generator=gen)
    t = 0.37
    out = field(torch.tensor(t), y, x)
    ref = torch.autograd.grad(out, (y, x, *field.parameters()), g)
    kernel = field.fused_kernel(y.detach(), x)
    assert isinstance(kernel, MLPKernel)
    with torch.no_grad():
        k, saved = kernel.evaluate(t, kernel.to_state(y), None, True)
        gy, record = kernel.vjp(saved, kernel.to_state(g), None)
        grads = kernel.gradients([record, record], [0.25, 0.75])  # weights sum to 1
    torch.testing.assert_close(kernel.from_state(k), out.detach(), rtol=1e-12, atol=1e-12)
    got = (kernel.from_state(gy), *grads)  # kernel.inputs: (x, *field.parameters())
    for a, b in zip(got, ref, strict=True):
        torch.testing.assert_close(a, b, rtol=1e-12, atol=1e-12)


def test_weights_follow_in_place_updates_and_new_storage(float64):
    field = _field()
    y0 = torch.randn(4, 3)
    with torch.no_grad():
        before = solve(field, y0).ys
        field.net[2].weight.mul_(0.5)  # an optimiser step: same storage
        after = solve(field, y0).ys
        reference = solve(Plain(field), y0).ys
    assert (after - before).abs().max() > 1e-3
    torch.testing.assert_close(after, reference, rtol=1e-12, atol=1e-12)
    field.float()  # new storage for every parameter
    with torch.no_grad():
        out = solve(field, y0.float()).ys
    assert out.dtype == torch.float32
    torch.testing.assert_close(out.double(), reference, rtol=1e-4, atol=1e-5)


def test_outputs_do_not_alias_recycled_buffers(float64):
    field = _field()
    gen = torch.Generator().manual_seed(4)
    a, b = torch.randn(4, 3, generator=gen), torch.randn(4, 3, generator=gen)
    with torch.no_grad():
        first = solve(field, a, saveat=[0.5, 1.0]).ys
        kept = first.clone()
        for _ in range(3):  # later solves reuse the pooled step buffers
            solve(field, b, saveat=[0.5, 1.0])
            solve(Plain(field), b)
    assert torch.equal(first, kept)


def test_second_order_gradients_raise(float64):
    field = _field()
    y0 = torch.randn(4, 3, requires_grad=True)
    with pytest.raises(RuntimeError, match="first-order gradients only.*create_graph=True"):
        torch.autograd.grad(solve(field, y0).ys.sum(), y0, create_graph=True)
    # ... while the plain path has them
    (g,) = torch.autograd.grad(solve(Plain(field), y0).ys.sum(), y0, create_graph=True)
    assert g.requires_grad


def test_training_step_matches_the_plain_module():
    # float32 training dtype: one Adam step through each path ends at the same weights.
    gen = torch.Generator().manual_seed(5)
    y0, target = torch.randn(32, 3, generator=gen), torch.randn(32, 3, generator=gen)
    weights = []
    for wrap in (False, True):
        field = _field(scale=1.0)
        f = Plain(field) if wrap else field
        opt = torch.optim.Adam(field.parameters(), lr=1e-2)
        for _ in range(3):
            opt.zero_grad()
            sol = solve(f, y0, solver=Dopri5(), controller=PIController(rtol=1e-4, atol=1e-4))
            ((sol.ys - target) ** 2).mean().backward()
            opt.step()
        weights.append(torch.cat([p.detach().flatten() for p in field.parameters()]))
    torch.testing.assert_close(weights[0], weights[1], rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize("gradient", GRADIENTS, ids=repr)
@pytest.mark.parametrize("setting", ["dp5", "tsit5-jump", "rk4-fixed"])
def test_gradients_summed_in_chunks(gradient, setting, monkeypatch, float64):
    # Fold the VJP records every 4 (as for large batches), recycling the buffers in between.
    monkeypatch.setattr("pyanode.torch._fused._FOLD_BYTES", 1)
    field = _field("tanh", control_dim=2)
    gen = torch.Generator().manual_seed(6)
    y0, x = torch.randn(5, 3, generator=gen), torch.randn(5, 2, generator=gen)
    assert field.fused_kernel(y0, x).fold_every == 4
    kwargs = SETTINGS[setting]
    fused = _run(field, field, y0, x, gradient, **kwargs)
    plain = _run(field, Plain(field), y0, x, gradient, **kwargs)
    assert fused[2].nfe_backward >= 12  # three folds or more
    _assert_equal(fused, plain, rtol=1e-10)


def test_gradient_path_by_shape():
    """Small records are stacked (one product per weight), large ones accumulated in place."""
    assert stacks_records(96, 32) and stacks_records(256, 32) and stacks_records(5, 16)
    assert not stacks_records(1024, 32) and not stacks_records(8192, 32)
    assert not stacks_records(96, 256) and not stacks_records(1024, 256)


@pytest.mark.parametrize("gradient", GRADIENTS, ids=repr)
@pytest.mark.parametrize("setting", ["dp5", "tsit5-jump", "rk4-fixed"])
def test_accumulated_gradients(gradient, setting, monkeypatch, float64):
    """The record-by-record accumulation (forced at a small shape, with a data control, the
    time column and the adjoint's weighted records) equals autograd."""
    monkeypatch.setattr("pyanode.torch._fused.stacks_records", lambda batch, hidden: False)
    field = _field("tanh", control_dim=2)
    gen = torch.Generator().manual_seed(7)
    y0, x = torch.randn(5, 3, generator=gen), torch.randn(5, 2, generator=gen)
    kwargs = SETTINGS[setting]
    fused = _run(field, field, y0, x, gradient, **kwargs)
    plain = _run(field, Plain(field), y0, x, gradient, **kwargs)
    _assert_equal(fused, plain, rtol=1e-10)


@pytest.mark.parametrize("gradient", [Backprop(), Adjoint()], ids=repr)
def test_fused_equals_autograd_at_a_large_batch(gradient, float64):
    """Batch 2048, width 64 (the accumulated gradient path): forward and gradients agree."""
    field = _field("relu", dim=2, hidden=64, scale=1.0)
    y0 = torch.randn(2048, 2, generator=torch.Generator().manual_seed(8))
    assert not stacks_records(2048, 64)
    fused = _run(field, field, y0, None, gradient)
    plain = _run(field, Plain(field), y0, None, gradient)
    _assert_equal(fused, plain, rtol=1e-10)
