"""The ways of passing a vector field (its shape `f(t, y, args)`, `f(t, y)`, `f(y)`, and what it
holds its weights in), each under every gradient method and entry point: no gradient is lost
silently; a field whose tensors cannot get their gradients raises a ValueError saying what to
pass."""

from __future__ import annotations

import functools
import inspect

import pytest
import torch
from torch import nn

from pyanode import odeint, odeint_adjoint
from pyanode.solvers import (
    Adjoint,
    Backprop,
    InterpolatingAdjoint,
    PIController,
    _problem,
    field_shape,
    solve,
)
from pyanode.torch import MLPField, NeuralODELayer, ODEBlock

GRADIENTS = {
    "backprop": Backprop(),
    "adjoint": Adjoint(),
    "adjoint-full-norm": Adjoint(seminorm=False),
    "interpolating": InterpolatingAdjoint(),
    "interpolating-full-norm": InterpolatingAdjoint(seminorm=False),
}
TIGHT = PIController(rtol=1e-9, atol=1e-9)


def _net():
    gen = torch.Generator().manual_seed(0)
    net = nn.Sequential(nn.Linear(2, 8), nn.Tanh(), nn.Linear(8, 2))
    with torch.no_grad():
        for p in net.parameters():
            p.copy_(torch.randn(p.shape, generator=gen))
    return net


class _TYArgs(nn.Module):
    def __init__(self, net):
        super().__init__()
        self.net = net

    def forward(self, t, y, args):
        return self.net(y)


class _TY(nn.Module):  # torchdiffeq's shape
    def __init__(self, net):
        super().__init__()
        self.net = net

    def forward(self, t, y):
        return self.net(y)


class _Holder:  # not a module: its tensors are found from the graph
    def __init__(self, net):
        self.net = net

    def dynamics(self, t, y):
        return self.net(y)

    def __call__(self, t, y):
        return self.net(y)


def _with_net(net, t, y):
    return net(y)


def _functional(t, y, args):
    w1, b1, w2, b2 = args
    return torch.tanh(y @ w1.T + b1) @ w2.T + b2


# Each way: (net, weights) -> (field, args, the tensors that must get gradients)
WAYS = {
    "module(t,y,args)": lambda net, w: (_TYArgs(net), None, list(net.parameters())),
    "module(t,y)": lambda net, w: (_TY(net), None, list(net.parameters())),
    "Sequential(y)": lambda net, w: (net, None, list(net.parameters())),
    "closure(t,y,args)": lambda net, w: (lambda t, y, args: net(y), None, list(net.parameters())),
    "closure(t,y)": lambda net, w: (lambda t, y: net(y), None, list(net.parameters())),
    "closure(y)": lambda net, w: (lambda y: net(y), None, list(net.parameters())),
    "bound method": lambda net, w: (_Holder(net).dynamics, None, list(net.parameters())),
    "callable object": lambda net, w: (_Holder(net), None, list(net.parameters())),
    "partial": lambda net, w: (functools.partial(_with_net, net), None, list(net.parameters())),
    "tensors in args": lambda net, w: (_functional, tuple(w), list(w)),
    "closure over non-leaf tensors": lambda net, w: (
        lambda t, y: _functional(t, y, tuple(2.0 * x for x in w)),
        None,
        list(w),
    ),
}


def _weights():
    return [p.detach().clone().requires_grad_() for p in _net().parameters()]


def _reference(way: str):
    """Backprop of the plain module field at a tight tolerance: the gradients every way and
    method must reach (for the non-leaf closure, of `2 w`: the chain rule gives twice)."""
    net, w = _net(), _weights()
    y0 = torch.randn(4, 2, generator=torch.Generator().manual_seed(1), requires_grad=True)
    if way == "tensors in args":
        f, args, wrt = _functional, tuple(w), w
    elif way == "closure over non-leaf tensors":
        f, args, wrt = (lambda t, y, a: _functional(t, y, tuple(2.0 * x for x in w))), None, w
    else:
        f, args, wrt = _TYArgs(net), None, list(net.parameters())
    ys = solve(f, y0, 0.0, 1.0, args=args, controller=PIController(rtol=1e-12, atol=1e-12),
               saveat=[0.5, 1.0]).ys  # fmt: skip
    return torch.autograd.grad((ys**2).sum(), (y0, *wrt))


def _check(grads, ref, tol=1e-6):
    for g, r in zip(grads, ref, strict=True):
        assert g is not None, "a gradient was lost"
        assert (g - r).norm() <= tol * r.norm(), ((g - r).norm() / r.norm()).item()


@pytest.mark.parametrize("gradient", GRADIENTS)
@pytest.mark.parametrize("way", WAYS)
def test_solve_every_way_every_gradient(way, gradient, float64):
    net, w = _net(), _weights()
    f, args, wrt = WAYS[way](net, w)
    y0 = torch.randn(4, 2, generator=torch.Generator().manual_seed(1), requires_grad=True)
    sol = solve(f, y0, 0.0, 1.0, args=args, controller=TIGHT, gradient=GRADIENTS[gradient],
                saveat=[0.5, 1.0])  # fmt: skip
    ((sol.ys**2).sum()).backward()
    _check([y0.grad, *(x.grad for x in wrt)], _reference(way))


@pytest.mark.parametrize("entry", ("odeint", "odeint_adjoint", "odeint_adjoint+params"))
@pytest.mark.parametrize("way", WAYS)
def test_odeint_every_way(way, entry, float64):
    net, w = _net(), _weights()
    f, args, wrt = WAYS[way](net, w)
    if args is not None:  # odeint has no args: close over them
        f = functools.partial(_functional, args=args)
    y0 = torch.randn(4, 2, generator=torch.Generator().manual_seed(1), requires_grad=True)
    t = torch.tensor([0.0, 0.5, 1.0])
    kwargs = dict(rtol=1e-9, atol=1e-9)
    if entry == "odeint":
        ys = odeint(f, y0, t, **kwargs)
    else:
        params = wrt if entry.endswith("params") else None
        ys = odeint_adjoint(f, y0, t, adjoint_params=params, **kwargs)
    ((ys[1:] ** 2).sum()).backward()
    _check([y0.grad, *(x.grad for x in wrt)], _reference(way))


@pytest.mark.parametrize("gradient", ("backprop", "adjoint", "interpolating-adjoint"))
@pytest.mark.parametrize("way", ("module(t,y,args)", "module(t,y)", "Sequential(y)"))
def test_ode_block_every_module_shape(way, gradient, float64):
    net = _net()
    f, _, wrt = WAYS[way](net, None)
    block = ODEBlock(f, "dopri5", gradient=gradient, rtol=1e-9, atol=1e-9)
    y0 = torch.randn(4, 2, generator=torch.Generator().manual_seed(1), requires_grad=True)
    ys = block(y0, saveat=torch.tensor([0.5, 1.0]))
    ((ys**2).sum()).backward()
    _check([y0.grad, *(x.grad for x in wrt)], _reference(way))
    assert sorted(n for n, _ in block.named_parameters()) == sorted(
        "field." + n for n, _ in f.named_parameters()
    )  # the adapter adds no parameters of its own


@pytest.mark.parametrize("gradient", ("backprop", "adjoint", "interpolating"))
def test_fused_field_and_a_closure_over_it_agree(gradient, float64):
    # MLPField solves through its fused kernel; a closure over it through autograd.
    field = MLPField(2, 8, act="tanh")
    y0 = torch.randn(5, 2, generator=torch.Generator().manual_seed(2), requires_grad=True)
    method = GRADIENTS[gradient]
    grads = []
    for f in (field, lambda t, y, args: field(t, y, args)):
        ys = solve(f, y0, 0.0, 1.0, controller=TIGHT, gradient=method, saveat=[0.3, 1.0]).ys
        grads.append(torch.autograd.grad((ys**2).sum(), (y0, *field.parameters())))
    _check(grads[1], grads[0], tol=1e-7)


# ---- what cannot get correct gradients raises --------------------------------------------------


def _late(w):
    """A closure that uses `w` only after t = 0.5 (not declared as a jump)."""
    return lambda t, y: -y * (w if t > 0.5 else 1.0)


@pytest.mark.parametrize("y0_grad", (True, False), ids=("y0-grad", "no-y0-grad"))
@pytest.mark.parametrize("gradient", GRADIENTS)
def test_late_tensor_raises_with_the_fix(gradient, y0_grad):
    w = torch.tensor(0.5, requires_grad=True)
    y0 = torch.ones(2, 2, requires_grad=y0_grad)
    with pytest.raises(ValueError, match=r"uses 1 tensor\(s\) that require grad at t=1 .* "
                       r"Pass them in args \(solve\), list them in adjoint_params"):  # fmt: skip
        sol = solve(_late(w), y0, gradient=GRADIENTS[gradient])
        sol.ys.sum().backward()


def test_late_tensor_raises_through_odeint_and_the_block():
    w = torch.tensor(0.5, requires_grad=True)
    y0 = torch.ones(2, 2, requires_grad=True)
    t = torch.tensor([0.0, 1.0])
    for run in (
        lambda: odeint(_late(w), y0, t),
        lambda: odeint_adjoint(_late(w), y0, t),
        lambda: ODEBlock(_late(w))(y0),
    ):
        with pytest.raises(ValueError, match=r"that it did not use at t0 or after a jump time"):
            run().sum().backward()


def test_late_tensor_declared_gets_its_gradient(float64):
    # The fixes the message names, each giving the exact gradient of y(1) = exp(-0.5 - 0.5 w).
    exact = -0.5 * torch.exp(torch.tensor(-0.5 - 0.25))
    y0 = torch.ones(1)
    w = torch.tensor(0.5, requires_grad=True)
    fixes = {
        "args": lambda: (
            solve(lambda t, y, a: -y * (a if t > 0.5 else 1.0), y0, args=w, controller=TIGHT).ys
        ),  # fmt: skip
        "jump_ts": lambda: solve(_late(w), y0, controller=TIGHT, jump_ts=[0.5]).ys,
        "adjoint_params": lambda: odeint_adjoint(
            _late(w), y0, torch.tensor([0.0, 1.0]), adjoint_params=(w,)
        )[-1],  # fmt: skip
    }
    for name, run in fixes.items():
        (grad,) = torch.autograd.grad(run().sum(), w)
        assert abs(grad.item() - exact.item()) < 1e-4, name  # the jump at 0.5 is not landed on


def test_issue_closure_case_gets_gradients():
    # The issue's example: a closure over a module under the adjoint.
    net = nn.Sequential(nn.Linear(2, 16), nn.Tanh(), nn.Linear(16, 2))
    y0 = torch.randn(8, 2, requires_grad=True)
    sol = solve(lambda t, y, args: net(y), y0, 0.0, 1.0, gradient=Adjoint())
    sol.ys.sum().backward()
    assert net[0].weight.grad is not None and net[0].weight.grad.abs().sum() > 0


# ---- field shapes ------------------------------------------------------------------------------


class _Forward3(nn.Module):
    def forward(self, t, y, args=None):
        return y


@pytest.mark.parametrize(
    "field, shape",
    [
        (lambda t, y, args: y, "t, y, args"),
        (lambda t, y: y, "t, y"),
        (lambda y: y, "y"),
        (lambda *a: a[1], "t, y, args"),
        (lambda t, y, scale=2.0: y * scale, "t, y"),  # optional parameters keep their defaults
        (_Forward3(), "t, y, args"),  # pyanode's fields: an optional third named args
        (_TY(nn.Identity()), "t, y"),
        (nn.Sequential(nn.Identity()), "y"),
        (nn.Tanh(), "y"),
        (_Holder(None), "t, y"),
        (_Holder(None).dynamics, "t, y"),
        (functools.partial(_with_net, None), "t, y"),
        (MLPField(2, 4), "t, y, args"),
    ],
)
def test_field_shapes(field, shape):
    assert field_shape(field) == shape


@pytest.mark.parametrize(
    "field, message",
    [
        (None, r"the vector field must be callable, got NoneType"),
        (lambda: 0, r"takes 0 required positional arguments .* f\(t, y\) or f\(y\)"),
        (lambda a, b, c, d: 0, r"takes 4 required positional arguments \(a, b, c, d\)"),
        (lambda y, t: y, r"looks like scipy's f\(y, t\); pyanode calls f\(t, y\)"),
        (torch.sin, r"cannot read the signature of the vector field sin"),
    ],
)  # fmt: skip
def test_field_shape_errors(field, message):
    with pytest.raises(TypeError, match=message):
        solve(field, torch.ones(1, 1))


def test_shape_is_read_once_per_field(monkeypatch):
    reads = []
    signature = inspect.signature
    monkeypatch.setattr(_problem.inspect, "signature", lambda f: reads.append(f) or signature(f))

    class Fresh(nn.Module):  # a class not seen before: its forward is read once
        def forward(self, t, y):
            return -y

    module = Fresh()

    def f(t, y):
        return -y

    for _ in range(3):
        solve(f, torch.ones(1, 1))
        solve(module, torch.ones(1, 1))
        solve(lambda t, y: -y, torch.ones(1, 1))  # a new closure each time, the same code
    assert len(reads) == 3


def test_neural_ode_layer_is_a_block_with_torchdyns_defaults():
    layer = NeuralODELayer(nn.Sequential(nn.Linear(2, 2)))
    assert isinstance(layer, ODEBlock)
    assert (layer.spec.solver, layer.spec.gradient, layer.spec.rtol, layer.spec.atol) == (
        "dp5",
        "adjoint",
        1e-3,
        1e-3,
    )
    autograd = NeuralODELayer(nn.Sequential(nn.Linear(2, 2)), sensitivity="autograd")
    assert autograd.spec.gradient == "backprop"
    interp = NeuralODELayer(nn.Sequential(nn.Linear(2, 2)), sensitivity="interpolated_adjoint")
    assert interp.spec.gradient == "interpolating-adjoint"


def test_block_time_span(float64):
    # y' = -y: the span given at construction, or at call time.
    block = ODEBlock(lambda t, y: -y, rtol=1e-8, atol=1e-8, t_span=(0.0, 2.0))
    y0 = torch.ones(3, 1)
    torch.testing.assert_close(block(y0), y0 * torch.exp(torch.tensor(-2.0)), rtol=1e-6, atol=0)
    torch.testing.assert_close(block(y0, t_span=(1.0, 1.5)), y0 * torch.exp(torch.tensor(-0.5)),
                               rtol=1e-6, atol=0)  # fmt: skip
    back = block(y0, t_span=torch.tensor([1.0, 0.0]))
    torch.testing.assert_close(back, y0 * torch.exp(torch.tensor(1.0)), rtol=1e-6, atol=0)
    with pytest.raises(ValueError, match=r"t_span must be two times \(t0, t1\)"):
        block(y0, t_span=torch.linspace(0, 1, 5))
    with pytest.raises(TypeError, match=r"a data-controlled field must take \(t, z, args\)"):
        ODEBlock(nn.Tanh(), control=True)
