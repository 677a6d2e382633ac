"""The flat parameter order shared by the torch and Julia backends, checked by hand and against
the torch models of every kind (the numpy conversions live in tests/julia_helpers.py)."""

import numpy as np
import pytest
from julia_helpers import julia_to_torch, split_layers, torch_to_julia

from pyanode._errors import SpecError
from pyanode.julia import weights
from pyanode.julia.weights import n_terms, parameter_count, weight_shapes
from pyanode.specs import MODEL_KINDS, ModelSpec


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


def test_hand_computed_galerkin_case():
    # GalerkinLinear with K = 2, out 2, in 3: torch weight (2, 2, 3) = 1..12, bias (2, 2) = 13..16,
    # i.e. W_0 = [[1, 2, 3], [4, 5, 6]], W_1 = [[7, 8, 9], [10, 11, 12]], b_0 = [13, 14],
    # b_1 = [15, 16]. Julia stores W as (2, 3, 2) and b as (2, 2), column-major: each W_k
    # transposed, the bias as it is.
    shapes = [(2, 2, 3)]
    torch_order = np.arange(1, 17, dtype=np.float32)
    julia_order = np.array(
        [1, 4, 2, 5, 3, 6, 7, 10, 8, 11, 9, 12, 13, 14, 15, 16], dtype=np.float32
    )
    np.testing.assert_array_equal(torch_to_julia(torch_order, shapes), julia_order)
    np.testing.assert_array_equal(julia_to_torch(julia_order, shapes), torch_order)
    [(weight, bias)] = split_layers(torch_order, shapes)
    np.testing.assert_array_equal(weight[1], [[7, 8, 9], [10, 11, 12]])
    np.testing.assert_array_equal(bias, [[13, 14], [15, 16]])
    assert parameter_count(shapes) == 16


def test_julia_order_is_fortran_memory_of_the_julia_arrays():
    rng = np.random.default_rng(0)
    shapes = [(4, 3), (5, 3, 4), (2, 3)]
    torch_parts, julia_parts = [], []
    for shape in shapes:
        w = rng.normal(size=shape).astype(np.float32)
        b = rng.normal(size=shape[:-1]).astype(np.float32)
        torch_parts += [w.reshape(-1), b.reshape(-1)]
        # Julia's arrays: W (out, in) or (out, in, K), b (out,) or (out, K)
        w_julia = w if w.ndim == 2 else w.transpose(1, 2, 0)
        b_julia = b if b.ndim == 1 else b.T
        julia_parts += [w_julia.reshape(-1, order="F"), b_julia.reshape(-1, order="F")]
    torch_order, julia_order = np.concatenate(torch_parts), np.concatenate(julia_parts)
    np.testing.assert_array_equal(torch_to_julia(torch_order, shapes), julia_order)
    np.testing.assert_array_equal(julia_to_torch(julia_order, shapes), torch_order)
    assert parameter_count(shapes) == torch_order.size == 4 * 3 + 4 + 5 * 12 + 5 * 3 + 2 * 3 + 2


def test_wrong_length_raises():
    with pytest.raises(ValueError, match=r"must have shape \(8,\) .* got \(7,\)"):
        torch_to_julia(np.zeros(7, np.float32), [(2, 3)])
    with pytest.raises(ValueError, match=r"must have shape \(16,\) .* got \(15,\)"):
        julia_to_torch(np.zeros(15, np.float32), [(2, 2, 3)])


def test_bad_layer_shape_raises():
    with pytest.raises(ValueError, match=r"\(out, in\) or \(K, out, in\), got \(3,\)"):
        parameter_count([(3,)])


@pytest.mark.parametrize(
    ("kind", "augment_dim", "expected"),
    [
        # in 2, hidden 8, 3 classes, degree 2, n_pieces 4, depth 2; the field input is [z, x?, t]
        ("node", 0, [(8, 3), (8, 8), (2, 8), (3, 2)]),
        ("anode", 2, [(8, 5), (8, 8), (4, 8), (3, 4)]),
        ("il-node", 1, [(3, 2), (8, 4), (8, 8), (3, 8), (3, 3)]),
        ("data-controlled", 0, [(8, 5), (8, 8), (2, 8), (3, 2)]),
        ("chebyshev", 1, [(3, 8, 4), (3, 8, 8), (3, 3, 8), (3, 3)]),
        ("fourier", 0, [(5, 8, 3), (5, 8, 8), (5, 2, 8), (3, 2)]),
        ("stacked", 1, [(4, 8, 4), (4, 8, 8), (4, 3, 8), (3, 3)]),
        ("adaptive-depth", 1, [(8, 2), (1, 8), (8, 4), (8, 8), (3, 8), (3, 3)]),
        ("resnet", 1, [(8, 3), (8, 8), (3, 8), (8, 3), (8, 8), (3, 8), (3, 3)]),
    ],
)
def test_weight_shapes(kind, augment_dim, expected):
    spec = ModelSpec(kind=kind, hidden=8, augment_dim=augment_dim, degree=2, n_pieces=4, depth=2)
    assert weight_shapes(spec, 2, 3) == expected


def test_weight_shapes_without_time():
    spec = ModelSpec(kind="node", hidden=8, time_dependent=False)
    assert weight_shapes(spec, 2, 3)[0] == (8, 2)
    spec = ModelSpec(kind="stacked", hidden=8, n_pieces=2, time_dependent=False)
    assert weight_shapes(spec, 2, 3)[0] == (2, 8, 2)


def test_n_terms():
    assert n_terms(ModelSpec(kind="chebyshev", degree=3)) == 4
    assert n_terms(ModelSpec(kind="fourier", degree=3)) == 7
    assert n_terms(ModelSpec(kind="stacked", n_pieces=5)) == 5
    with pytest.raises(SpecError, match=r"model.kind='anode' has no depth-variant basis"):
        n_terms(ModelSpec(kind="anode", augment_dim=1))


KIND_SPECS = [
    ModelSpec(kind="node", hidden=6),
    ModelSpec(kind="anode", hidden=6, augment_dim=2),
    ModelSpec(kind="il-node", hidden=6, augment_dim=1),
    ModelSpec(kind="data-controlled", hidden=6, augment_dim=1),
    ModelSpec(kind="chebyshev", hidden=6, augment_dim=1, degree=3),
    ModelSpec(kind="fourier", hidden=6, degree=2, time_dependent=False),
    ModelSpec(kind="stacked", hidden=6, augment_dim=2, n_pieces=3),
    ModelSpec(kind="adaptive-depth", hidden=6, augment_dim=1),
    ModelSpec(kind="resnet", hidden=6, augment_dim=1, depth=3),
]


def test_every_model_kind_is_in_the_julia_backend():
    # every kind has a layout, checked against the torch model of the same spec below
    assert sorted(spec.kind for spec in KIND_SPECS) == sorted(MODEL_KINDS)
    for spec in KIND_SPECS:
        assert weight_shapes(spec, 2, 3)


@pytest.mark.parametrize("spec", KIND_SPECS, ids=lambda spec: spec.kind)
def test_weight_shapes_match_the_torch_models(spec):
    """Every parameter of the real torch model, in registration (= flat) order, is the weight or
    the bias of the layer `weight_shapes` says, and `split_layers` cuts torch's own flat vector
    into exactly those tensors."""
    torch_models = pytest.importorskip("pyanode.torch")
    model = torch_models.build_model(spec, 3, 4, seed=0)
    parameters = [p.detach().numpy() for p in model.parameters()]
    shapes = weight_shapes(spec, 3, 4)
    expected = [shape for weight in shapes for shape in (weight, weight[:-1])]
    assert [p.shape for p in parameters] == expected
    flat = torch_models.flat_parameters(model)
    assert flat.shape == (parameter_count(shapes),)
    assert parameter_count(shapes) == torch_models.count_parameters(spec, 3, 4)
    for (weight, bias), torch_weight, torch_bias in zip(
        split_layers(flat, shapes), parameters[::2], parameters[1::2], strict=True
    ):
        np.testing.assert_array_equal(weight, torch_weight)
        np.testing.assert_array_equal(bias, torch_bias)


def test_kind_outside_the_julia_backend_raises(monkeypatch):
    monkeypatch.setattr(weights, "MODEL_KINDS", ("node", "anode"))
    with pytest.raises(SpecError, match=r"model.kind='stacked' is not known; accepted: node, an"):
        weight_shapes(ModelSpec(kind="stacked"), 2, 2)
