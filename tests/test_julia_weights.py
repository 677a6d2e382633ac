"""The flat parameter order shared by the torch and Julia backends, checked by hand."""

import numpy as np
import pytest

from pyanode._errors import SpecError
from pyanode.julia.weights import (
    dense_shapes,
    julia_to_torch,
    parameter_count,
    split_layers,
    torch_to_julia,
)
from pyanode.specs import ModelSpec


def test_hand_computed_case():
    # W = [[1, 2, 3], [4, 5, 6]] (out 2, in 3), b = [7, 8]; then W2 = [[9, 10]] (1x2), b2 = [11]
    shapes = [(2, 3), (1, 2)]
    torch_order = np.arange(1, 12, dtype=np.float32)
    julia_order = np.array([1, 4, 2, 5, 3, 6, 7, 8, 9, 10, 11], dtype=np.float32)
    np.testing.assert_array_equal(torch_to_julia(torch_order, shapes), julia_order)
    np.testing.assert_array_equal(julia_to_torch(julia_order, shapes), torch_order)
    (w1, b1), (w2, b2) = split_layers(torch_order, shapes)
    np.testing.assert_array_equal(w1, [[1, 2, 3], [4, 5, 6]])
    np.testing.assert_array_equal(b1, [7, 8])
    np.testing.assert_array_equal(w2, [[9, 10]])
    np.testing.assert_array_equal(b2, [11])


def test_julia_order_is_fortran_memory_of_the_weight():
    rng = np.random.default_rng(0)
    shapes = [(4, 3), (3, 4), (2, 3)]
    layers = [(rng.normal(size=s).astype(np.float32), rng.normal(size=s[0])) for s in shapes]
    torch_order = np.concatenate([np.concatenate([w.reshape(-1), b]) for w, b in layers])
    julia_order = np.concatenate([np.concatenate([w.reshape(-1, order="F"), b]) for w, b in layers])
    np.testing.assert_array_equal(torch_to_julia(torch_order, shapes), julia_order)
    np.testing.assert_array_equal(julia_to_torch(julia_order, shapes), torch_order)
    assert parameter_count(shapes) == torch_order.size == 4 * 3 + 4 + 3 * 4 + 3 + 2 * 3 + 2


def test_wrong_length_raises():
    with pytest.raises(ValueError, match=r"must have shape \(8,\) .* got \(7,\)"):
        torch_to_julia(np.zeros(7, np.float32), [(2, 3)])


@pytest.mark.parametrize(
    ("kind", "augment_dim", "expected"),
    [
        # in 2, hidden 8, 3 classes; the field input is [z, x?, t]
        ("node", 0, [(8, 3), (8, 8), (2, 8), (3, 2)]),
        ("anode", 2, [(8, 5), (8, 8), (4, 8), (3, 4)]),
        ("il-node", 1, [(3, 2), (8, 4), (8, 8), (3, 8), (3, 3)]),
        ("data-controlled", 0, [(8, 5), (8, 8), (2, 8), (3, 2)]),
    ],
)
def test_dense_shapes(kind, augment_dim, expected):
    spec = ModelSpec(kind=kind, hidden=8, augment_dim=augment_dim)
    assert dense_shapes(spec, 2, 3) == expected


def test_dense_shapes_without_time():
    spec = ModelSpec(kind="node", hidden=8, time_dependent=False)
    assert dense_shapes(spec, 2, 3)[0] == (8, 2)


def test_dense_shapes_match_the_torch_models():
    build_model = pytest.importorskip("pyanode.torch.models").build_model
    for kind, augment_dim in [("node", 0), ("anode", 2), ("il-node", 1), ("data-controlled", 1)]:
        spec = ModelSpec(kind=kind, hidden=6, augment_dim=augment_dim)
        model = build_model(spec, 3, 4, seed=0)
        torch_shapes = [tuple(p.shape) for p in model.parameters() if p.ndim == 2]
        assert dense_shapes(spec, 3, 4) == torch_shapes, kind


def test_torch_only_kind_raises():
    with pytest.raises(SpecError, match=r"model.kind='stacked' is not in the Julia backend yet"):
        dense_shapes(ModelSpec(kind="stacked"), 2, 2)
