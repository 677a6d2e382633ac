"""The flat parameter vector shared by the torch and Julia backends, in pure numpy.

Order (docs/architecture.md): layers in forward order; for each, the weight then the bias, as
torch's `weight.flatten()` and `bias.flatten()`. A layer is described by its torch weight shape:

* a dense layer, (out, in): W row-major, then b (out,). Julia (Lux) stores W as (out, in)
  column-major, so in Julia's own memory (a `ComponentArray`) each weight segment is the
  transpose.
* a `GalerkinLinear` (depth-variant weights theta(t) = sum_k theta_k phi_k(t)), (K, out, in):
  W_0, ..., W_{K-1} (each row-major), then b_0, ..., b_{K-1} (torch's (K, out) bias). Julia's
  `GalerkinDense` stores W as (out, in, K) and b as (out, K), both column-major: in Julia's
  memory each W_k is transposed and the bias segment is unchanged.

The Julia side converts itself (`PyANODE.flat_to_ps` / `ps_to_flat`); these helpers give the same
conversion in Python, for tests and for arrays passed by memory.

Example: W = [[1, 2, 3], [4, 5, 6]], b = [7, 8] is [1, 2, 3, 4, 5, 6, 7, 8] in the shared order
and [1, 4, 2, 5, 3, 6, 7, 8] in Julia's memory order.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from pyanode._errors import SpecError
from pyanode.specs import ModelSpec

Shape = tuple[int, ...]  # a torch weight shape: (out, in) or (K, out, in)
Shapes = Sequence[Shape]  # one per layer, in forward order

JULIA_KINDS = (
    "node",
    "anode",
    "il-node",
    "data-controlled",
    "chebyshev",
    "fourier",
    "stacked",
    "adaptive-depth",
    "resnet",
)
DEPTH_VARIANT_KINDS = ("chebyshev", "fourier", "stacked")


def n_terms(spec: ModelSpec) -> int:
    """K, the basis functions of a depth-variant kind: Chebyshev `degree + 1`, Fourier
    `2 degree + 1`, stacked `n_pieces` (as `pyanode.torch._bases`).

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
        spec: the model spec; `kind` one of `JULIA_KINDS`.
        in_dim: input features; out_dim: classes or regression targets.

    Returns:
        (out, in) for a dense layer, (K, out, in) for a depth-variant one:
        [input map (il-node only) | g_omega's two layers (adaptive-depth only), field layers 1,
        2, 3 (resnet: three per residual block), head].

    Raises:
        SpecError: for a kind the Julia backend does not build.
    """
    if spec.kind not in JULIA_KINDS:
        raise SpecError(
            f"model.kind={spec.kind!r} is not in the Julia backend; it has "
            f"{', '.join(JULIA_KINDS)} (use backend='torch' for {spec.kind!r})"
        )
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


def _check(vector: np.ndarray, shapes: Shapes) -> np.ndarray:
    flat = np.asarray(vector)
    n = parameter_count(shapes)
    if flat.ndim != 1 or flat.shape[0] != n:
        raise ValueError(
            f"parameter vector must have shape ({n},) for layers with weights {list(shapes)}, "
            f"got {flat.shape}"
        )
    return flat


def _convert(vector: np.ndarray, shapes: Shapes, *, to_julia: bool) -> np.ndarray:
    flat = _check(vector, shapes)
    out = np.empty_like(flat)
    offset = 0
    for shape in map(_check_shape, shapes):
        size = int(np.prod(shape))
        segment = flat[offset : offset + size]
        # torch (..., out, in) row-major <-> Julia's (out, in, ...) column-major: each (out, in)
        # matrix is transposed in place, the leading K (if any) stays the slowest index
        *lead, rows, cols = shape
        source = (*lead, rows, cols) if to_julia else (*lead, cols, rows)
        out[offset : offset + size] = segment.reshape(source).swapaxes(-1, -2).reshape(-1)
        offset += size
        n_bias = int(np.prod(shape[:-1]))  # (out,) or (K, out): the same in both orders
        out[offset : offset + n_bias] = flat[offset : offset + n_bias]
        offset += n_bias
    return out


def torch_to_julia(vector: np.ndarray, shapes: Shapes) -> np.ndarray:
    """Shared (torch, row-major) order -> Julia's memory order (column-major weights).

    Raises:
        ValueError: if the vector does not have the length the shapes imply.
    """
    return _convert(vector, shapes, to_julia=True)


def julia_to_torch(vector: np.ndarray, shapes: Shapes) -> np.ndarray:
    """Julia's memory order (column-major weights) -> the shared (torch, row-major) order.

    Raises:
        ValueError: if the vector does not have the length the shapes imply.
    """
    return _convert(vector, shapes, to_julia=False)


def split_layers(vector: np.ndarray, shapes: Shapes) -> list[tuple[np.ndarray, np.ndarray]]:
    """The (weight, bias) of every layer from a vector in the shared order, in torch's shapes:
    (out, in) and (out,), or (K, out, in) and (K, out)."""
    flat = _check(vector, shapes)
    layers = []
    offset = 0
    for shape in map(_check_shape, shapes):
        size = int(np.prod(shape))
        weight = flat[offset : offset + size].reshape(shape)
        offset += size
        n_bias = int(np.prod(shape[:-1]))
        layers.append((weight, flat[offset : offset + n_bias].reshape(shape[:-1])))
        offset += n_bias
    return layers
