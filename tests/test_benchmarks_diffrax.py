"""benchmarks/diffrax_peer.py: diffrax solves the same problem with the same error norm, and the
benchmark names what is missing when jax is not installed."""

import sys

import numpy as np
import pytest
import torch

from benchmarks import run


def test_missing_jax_skips_the_diffrax_column_with_the_extra_named(monkeypatch):
    monkeypatch.setitem(sys.modules, "jax", None)  # as if not installed
    reason = run._diffrax_missing()
    assert reason is not None and reason.startswith("cannot import jax")
    assert "pip install -e '.[bench]'" in reason and "\n" not in reason


def test_rms_norms_agree():
    """pyanode's error norm and diffrax's default (optimistix.rms_norm) on one array."""
    jnp = pytest.importorskip("jax.numpy")
    optx = pytest.importorskip("optimistix")
    from pyanode.solvers._step import rms_norm

    e = np.random.default_rng(0).standard_normal((96, 7)).astype(np.float32)
    mine = rms_norm(e.size)(torch.as_tensor(e))
    theirs = float(optx.rms_norm(jnp.asarray(e)))
    assert mine == pytest.approx(theirs, rel=1e-6)
    assert mine == pytest.approx(np.sqrt(np.mean(e.astype(np.float64) ** 2)), rel=1e-6)


def test_diffrax_solves_the_pyanode_field_with_its_weights():
    """The copied weights and the [z, t] input order: both solutions agree at tight tolerances
    (to 1e-3 in float32, the ReLU kinks limiting both; a wrong order is off by ~0.1)."""
    pytest.importorskip("diffrax")
    import jax.numpy as jnp

    from benchmarks import diffrax_peer
    from pyanode.solvers import PIController, solve
    from pyanode.torch import MLPField

    torch.manual_seed(0)
    field = MLPField(2, 8)
    z0 = torch.randn(5, 2)
    mine = solve(field, z0, 0.0, 1.0, controller=PIController(rtol=1e-6, atol=1e-6)).ys
    layers = diffrax_peer.layers_of(field.net)
    theirs, steps = diffrax_peer.make_solve("backprop", 1e-6, 1e-6)(layers, jnp.asarray(z0.numpy()))
    assert int(steps) > 1
    np.testing.assert_allclose(np.asarray(theirs), mine.detach().numpy(), atol=1e-3)
