"""The layout of the flat parameter vector shared by the torch and Julia backends, in pure numpy.

Order (docs/architecture.md): layers in forward order; for each, the weight then the bias, as
torch's `weight.flatten()` and `bias.flatten()`. A layer is described by its torch weight shape:

* a dense layer, (out, in): W row-major, then b (out,). Julia (Lux) stores W as (out, in)
  column-major, so in Julia's own memory (a `ComponentArray`) each weight segment is the
  transpose.
* a `GalerkinLinear` (depth-variant weights theta(t) = sum_k theta_k phi_k(t)), (K, out, in):
  W_0, ..., W_{K-1} (each row-major), then b_0, ..., b_{K-1} (torch's (K, out) bias). Julia's
  `GalerkinDense` stores W as (out, in, K) and b as (out, K), both column-major: in Julia's
  memory each W_k is transposed and the bias segment is unchanged.

The Julia side converts between the shared order and its own arrays (`PyANODE.flat_to_ps` /
`ps_to_flat`); Python needs only the shapes, to check a vector's length before it crosses.

Example: W = [[1, 2, 3], [4, 5, 6]], b = [7, 8] is [1, 2, 3, 4, 5, 6, 7, 8] in the shared order
and [1, 4, 2, 5, 3, 6, 7, 8] in Julia's memory order.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from pyanode._errors import SpecError
from pyanode._names import MODEL_KINDS
from pyanode._validate import check_choice
from pyanode.specs import ModelSpec

Shape = tuple[int, ...]  # a torch weight shape: (out, in) or (K, out, in)
Shapes = Sequence[Shape]  # one per layer, in forward order

DEPTH_VARIANT_KINDS = ("chebyshev", "fourier", "stacked")


def n_terms(spec: ModelSpec) -> int:
    """K, the basis functions of a depth-variant kind: Chebyshev `degree + 1`, Fourier
    `2 degree + 1`, stacked `n_pieces` (as `pyanode.torch._depth_variant`).

    Raises:
        SpecError: for a kind that is not depth-variant.
    """
    if spec.kind == "chebyshev":
        return spec.degree + 1
    if spec.kind == "fourier":
        return 2 * spec.degree + 1
    if spec.kind == "stacked":
        return spec.n_pieces
    raise SpecError(
        f"model.kind={spec.kind!r} has no depth-variant basis; accepted: "
        f"{', '.join(DEPTH_VARIANT_KINDS)}"
    )


def weight_shapes(spec: ModelSpec, in_dim: int, out_dim: int) -> list[Shape]:
    """The torch weight shape of every layer of `spec`'s model, in forward order.

    Arguments:
        spec: the model spec (the Julia backend builds every kind of `MODEL_KINDS`).
        in_dim: input features; out_dim: classes or regression targets.

    Returns:
        (out, in) for a dense layer, (K, out, in) for a depth-variant one:
        [input map (il-node only) | g_omega's two layers (adaptive-depth only), field layers 1,
        2, 3 (resnet: three per residual block), head].

    Raises:
        SpecError: for a kind the Julia backend does not build.
    """
    check_choice("model.kind", spec.kind, MODEL_KINDS, error=SpecError)
    state = in_dim + spec.augment_dim
    head: list[Shape] = [(out_dim, state)]

    def mlp(n_in: int) -> list[Shape]:  # Dupont et al.'s field: n_in -> hidden -> hidden -> state
        return [(spec.hidden, n_in), (spec.hidden, spec.hidden), (state, spec.hidden)]

    if spec.kind == "resnet":  # depth residual blocks h + mlp(h), no time input
        return [*mlp(state) * spec.depth, *head]
    control = in_dim if spec.kind == "data-controlled" else 0
    field = mlp(state + control + int(spec.time_dependent))
    if spec.kind in DEPTH_VARIANT_KINDS:
        field = [(n_terms(spec), *shape) for shape in field]
    before: list[Shape] = []
    if spec.kind == "il-node":
        before = [(state, in_dim)]
    elif spec.kind == "adaptive-depth":
        before = [(spec.hidden, in_dim), (1, spec.hidden)]  # g_omega
    return [*before, *field, *head]


def _check_shape(shape: Shape) -> Shape:
    if len(shape) not in (2, 3):
        raise ValueError(f"a layer's weight shape is (out, in) or (K, out, in), got {shape}")
    return tuple(int(n) for n in shape)


def parameter_count(shapes: Shapes) -> int:
    """Number of parameters of layers with these torch weight shapes (weights and biases; a
    weight (K, out, in) has a bias (K, out), a weight (out, in) a bias (out,))."""
    return sum(
        int(np.prod(shape)) + int(np.prod(shape[:-1])) for shape in map(_check_shape, shapes)
    )
