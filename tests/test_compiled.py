"""The compiled path of MLPField (numba kernels for whole steps and their VJPs): the same
solution, steps and gradients as the torch fused kernel, the choice of path, and its cache.

`tests/test_fused.py` compares the fused field (now through the compiled path where numba is
installed) with autograd through the plain module in float64; here the compiled path is
compared with the torch fused kernel it replaces, in float32 and float64.
"""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest
import torch
from problems import KERNEL_SETTINGS, twisting_field

from pyanode.solvers import Adjoint, Backprop, InterpolatingAdjoint, solve
from pyanode.torch import _compiled

pytest.importorskip("numba")
ROOT = Path(__file__).resolve().parents[1]

GRADIENTS = (Backprop(), Adjoint(), InterpolatingAdjoint(), Adjoint(seminorm=False))
SETTINGS = KERNEL_SETTINGS


def _field(dim, act, control_dim, time_dependent, dtype, hidden=32, seed=0, scale=2.0):
    return twisting_field(
        dim,
        hidden,
        act=act,
        control_dim=control_dim,
        time_dependent=time_dependent,
        dtype=dtype,
        seed=seed,
        scale=scale,
    )


def _run(field, y0, x, gradient, t1, **kwargs):
    """(ys, stats, grads of y0, x, t1 and every parameter) of a loss of one solve."""
    field.zero_grad()
    y0 = y0.detach().clone().requires_grad_()
    x = None if x is None else x.detach().clone().requires_grad_()
    t1 = torch.tensor(t1, dtype=y0.dtype, requires_grad=True)
    sol = solve(field, y0, 0.0, t1, args=x, gradient=gradient, **kwargs)
    loss = (sol.ys**2).sum() + (sol.ys * torch.linspace(-1, 1, sol.ys.shape[-1])).sum()
    loss.backward()
    grads = [y0.grad, t1.grad] + ([] if x is None else [x.grad])
    return sol.ys.detach(), sol.stats, grads + [p.grad for p in field.parameters()]


def _torch_path(monkeypatch):
    monkeypatch.setattr(_compiled, "compiled_applies", lambda kernel, like, options: False)


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64], ids=str)
@pytest.mark.parametrize("gradient", GRADIENTS, ids=repr)
@pytest.mark.parametrize("setting", SETTINGS, ids=str)
@pytest.mark.parametrize(
    ("dim", "act", "control_dim", "time_dependent"),
    [(2, "relu", 0, True), (7, "relu", 0, True), (3, "tanh", 2, True), (2, "tanh", 0, False)],
    ids=["node", "anode", "tanh-control", "tanh-autonomous"],
)
def test_compiled_equals_torch(monkeypatch, dtype, gradient, setting, dim, act, control_dim,
                               time_dependent):  # fmt: skip
    monkeypatch.setattr(_compiled, "ACTIVATIONS", ("relu", "tanh"))  # tanh: kernels tested too
    field = _field(dim, act, control_dim, time_dependent, dtype)
    gen = torch.Generator().manual_seed(1)
    y0 = torch.randn(24, dim, generator=gen, dtype=dtype)
    if dim == 7:  # ANODE: the data in 2 dimensions, zeros appended
        y0[:, 2:] = 0.0
    x = torch.randn(24, control_dim, generator=gen, dtype=dtype) if control_dim else None
    kwargs = SETTINGS[setting]
    compiled = _run(field, y0, x, gradient, 1.0, **kwargs)
    _torch_path(monkeypatch)
    plain = _run(field, y0, x, gradient, 1.0, **kwargs)
    (_, fast, _), (_, slow, _) = compiled, plain
    assert (fast.nfe_forward, fast.n_accepted, fast.n_rejected) == (
        slow.nfe_forward,
        slow.n_accepted,
        slow.n_rejected,
    )  # the same steps
    assert fast.n_accepted >= 2
    if dtype == torch.float64 or isinstance(gradient, Backprop):
        assert fast.nfe_backward == slow.nfe_backward
    else:  # an adjoint's steps in float32 follow the round-off of its start, y(t1)
        assert abs(fast.nfe_backward - slow.nfe_backward) <= 0.1 * slow.nfe_backward
    if dtype == torch.float64:  # measured: ~1e-14 relative
        _assert_close(compiled, plain, plain, rtol=1e-11)
    elif fast.nfe_backward == slow.nfe_backward:  # as close to float64 as the torch path
        # (ReLU kinks amplify float32 round-off)
        reference = _run(field.double(), y0.double(), None if x is None else x.double(),
                         gradient, 1.0, **kwargs)  # fmt: skip
        _assert_close(compiled, plain, reference, rtol=1e-5)
    else:  # other backward steps: the two differ by the adjoint's error at rtol = 1e-3
        _assert_close(compiled, plain, plain, rtol=3e-2)


def _assert_close(compiled, plain, reference, rtol):
    """Each result of `compiled` within `rtol` (relative to its largest entry) of `reference`,
    or no further from it than three times the `plain` one."""
    pairs = zip(
        [compiled[0], *compiled[2]],
        [plain[0], *plain[2]],
        [reference[0], *reference[2]],
        strict=True,
    )
    for c, p, r in pairs:
        if r is None:  # t1 with saveat
            assert c is None and p is None
            continue
        scale = r.abs().max().item()
        assert scale > 0
        error = (c.double() - r).abs().max().item()
        assert error <= max(rtol * scale, 3.0 * (p.double() - r).abs().max().item())


def test_rejected_steps_agree(monkeypatch):
    field = _field(2, "relu", 0, True, torch.float32, scale=6.0)
    y0 = torch.randn(96, 2, generator=torch.Generator().manual_seed(3))
    compiled = _run(field, y0, None, Backprop(), 2.0)
    _torch_path(monkeypatch)
    plain = _run(field, y0, None, Backprop(), 2.0)
    assert compiled[1] == plain[1] and compiled[1].n_rejected > 0


def test_the_compiled_path_is_taken(monkeypatch):
    field = _field(2, "relu", 0, True, torch.float32)
    taken = []
    for cls in (_compiled.CompiledStepper, _compiled.CompiledAdjointStepper):
        monkeypatch.setattr(cls, "__init__", _spy(cls.__init__, taken))
    y0 = torch.randn(8, 2, requires_grad=True)
    solve(field, y0).ys.sum().backward()
    assert taken == ["CompiledStepper"]
    solve(field, y0, gradient=Adjoint()).ys.sum().backward()
    assert taken[1:] == ["CompiledStepper", "CompiledAdjointStepper"]
    taken.clear()
    solve(field, y0, norm=lambda e: e.abs().max())  # a user norm: the torch path
    solve(field, y0, gradient=InterpolatingAdjoint()).ys.sum().backward()
    solve(field, y0, gradient=Adjoint(seminorm=False)).ys.sum().backward()
    assert taken == ["CompiledStepper"]  # the forward of the full-norm adjoint only


def _spy(init, taken):
    def spy(self, *args, **kwargs):
        taken.append(type(self).__name__)
        init(self, *args, **kwargs)

    return spy


def test_compiled_applies():
    field = _field(2, "relu", 0, True, torch.float32)
    kernel = field.fused_kernel(torch.zeros(8, 2), None)
    like = torch.zeros(2, 8)
    assert _compiled.compiled_applies(kernel, like, {"tolerances": (1e-3, 1e-3), "norm": None})
    assert _compiled.compiled_applies(kernel, like.double(), {"tolerances": None})
    assert not _compiled.compiled_applies(kernel, like.half(), {"tolerances": (1e-3, 1e-3)})
    assert not _compiled.compiled_applies(kernel, like, {"norm": lambda e: 0.0})
    tolerances = (1e-3, torch.ones(2, 8))  # per-element atol: the torch path
    assert not _compiled.compiled_applies(kernel, like, {"tolerances": tolerances})
    tanh = _field(2, "tanh", 0, True, torch.float32).fused_kernel(torch.zeros(8, 2), None)
    assert not _compiled.compiled_applies(tanh, like, {})
    # large evaluations (batch x width, or the width alone) take the torch path: faster there
    assert _compiled.compiled_applies(kernel, torch.zeros(2, 1024), {})  # 1024 x 32
    assert not _compiled.compiled_applies(kernel, torch.zeros(2, 2048), {})  # 2048 x 32
    wide = _field(2, "relu", 0, True, torch.float32, hidden=256)
    assert not _compiled.compiled_applies(wide.fused_kernel(torch.zeros(8, 2), None), like, {})


def _python(code: str, **env: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-c", textwrap.dedent(code)],
        cwd=ROOT,
        env={**os.environ, "PYTHONPATH": str(ROOT), **env},
        capture_output=True,
        text=True,
        timeout=300,
    )


def test_without_numba_the_torch_path_runs():
    result = _python(
        """
        import sys
        sys.modules["numba"] = None  # numba made unimportable
        import torch
        from pyanode.solvers import Dopri5, solve
        from pyanode.solvers._step import Stepper
        from pyanode.torch import MLPField, _compiled
        assert _compiled.kernels() is None
        field = MLPField(2, 8)
        kernel = field.fused_kernel(torch.zeros(4, 2), None)
        assert type(kernel.stepper(Dopri5(), torch.zeros(2, 4))) is Stepper
        y0 = torch.randn(4, 2, requires_grad=True)
        solve(field, y0).ys.sum().backward()
        assert y0.grad is not None and field.net[0].weight.grad is not None
        print("ok")
        """
    )
    assert result.returncode == 0 and "ok" in result.stdout, result.stderr


def test_a_second_process_loads_the_kernels_from_the_disk_cache():
    code = """
        import torch
        from numba.core.registry import CPUDispatcher
        from pyanode.torch import MLPField, _compiled_kernels
        from pyanode.solvers import solve
        for shape in ((2, 8, 4), (3, 8, 5)):
            for dtype in (torch.float32, torch.float64):
                field = MLPField(*shape[:2]).to(dtype)
                y0 = torch.randn(shape[2], shape[0], dtype=dtype, requires_grad=True)
                solve(field, y0).ys.sum().backward()
        kernels = [f for f in vars(_compiled_kernels).values() if isinstance(f, CPUDispatcher)]
        print(sum(sum(f.stats.cache_hits.values()) for f in kernels),
              sum(sum(f.stats.cache_misses.values()) for f in kernels))
        """
    _python(code)  # compiles, or loads the cache this test run has written already
    result = _python(code)
    assert result.returncode == 0, result.stderr
    hits, misses = map(int, result.stdout.split()[-2:])
    # every kernel signature used came from the disk cache: none was compiled again
    assert hits > 0 and misses == 0, (hits, misses)


def test_an_unwritable_package_caches_in_the_user_directory(tmp_path):
    result = _python(
        """
        import numba.core.caching as caching
        def unwritable(self):
            raise PermissionError("read-only package directory")
        caching.InTreeCacheLocator.ensure_cache_path = unwritable
        from pyanode.torch import _compiled_kernels
        print(_compiled_kernels.rk_step._cache._cache_path)
        """,
        XDG_CACHE_HOME=str(tmp_path),
        NUMBA_CACHE_DIR="",
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip().startswith(str(tmp_path / "numba"))


def test_the_environment_switch_turns_it_off():
    result = _python(
        "from pyanode.torch import _compiled; print(_compiled.kernels())",
        PYANODE_COMPILED="0",
    )
    assert result.stdout.strip() == "None", result.stderr
