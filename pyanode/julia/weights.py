"""The flat parameter vector shared by the torch and Julia backends, in pure numpy.

Order (docs/architecture.md): dense layers in forward order; for each, the weight W (out, in)
row-major, as torch's `weight.flatten()`, then the bias b (out). Julia (Lux) stores W as
(out, in) column-major, so in Julia's own memory (a `ComponentArray`) each weight segment is
the transpose. The Julia side converts itself (`PyANODE.flat_to_ps` / `ps_to_flat`); these
helpers give the same conversion in Python, for tests and for arrays passed by memory.

Example: W = [[1, 2, 3], [4, 5, 6]], b = [7, 8] is [1, 2, 3, 4, 5, 6, 7, 8] in the shared order
and [1, 4, 2, 5, 3, 6, 7, 8] in Julia's memory order.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from pyanode._errors import SpecError
from pyanode.specs import ModelSpec

Shapes = Sequence[tuple[int, int]]  # (out, in) of every dense layer, in forward order

JULIA_KINDS = ("node", "anode", "il-node", "data-controlled")


def dense_shapes(spec: ModelSpec, in_dim: int, out_dim: int) -> list[tuple[int, int]]:
    """The (out, in) shape of every dense layer of `spec`'s model, in forward order.

    Arguments:
        spec: the model spec; `kind` one of `JULIA_KINDS`.
        in_dim: input features; out_dim: classes or regression targets.

    Returns:
        [input map (il-node only), field layer 1, 2, 3, head].

    Raises:
        SpecError: for a kind the Julia backend does not build.
    """
    if spec.kind not in JULIA_KINDS:
        raise SpecError(
            f"model.kind={spec.kind!r} is not in the Julia backend yet; it has "
            f"{', '.join(JULIA_KINDS)} (use backend='torch' for {spec.kind!r})"
        )
    state = in_dim + spec.augment_dim
    field_in = state + (in_dim if spec.kind == "data-controlled" else 0) + int(spec.time_dependent)
    field = [(spec.hidden, field_in), (spec.hidden, spec.hidden), (state, spec.hidden)]
    input_map = [(state, in_dim)] if spec.kind == "il-node" else []
    return [*input_map, *field, (out_dim, state)]


def parameter_count(shapes: Shapes) -> int:
    """Number of parameters of dense layers with these (out, in) shapes (weights and biases)."""
    return sum(out * inp + out for out, inp in shapes)


def _check(vector: np.ndarray, shapes: Shapes) -> np.ndarray:
    flat = np.asarray(vector)
    n = parameter_count(shapes)
    if flat.ndim != 1 or flat.shape[0] != n:
        raise ValueError(
            f"parameter vector must have shape ({n},) for dense layers {list(shapes)}, "
            f"got {flat.shape}"
        )
    return flat


def _convert(vector: np.ndarray, shapes: Shapes, *, to_julia: bool) -> np.ndarray:
    flat = _check(vector, shapes)
    out = np.empty_like(flat)
    offset = 0
    for rows, cols in shapes:
        size = rows * cols
        segment = flat[offset : offset + size]
        # row-major (rows, cols) <-> column-major (rows, cols) = row-major transpose
        if to_julia:
            out[offset : offset + size] = segment.reshape(rows, cols).T.reshape(-1)
        else:
            out[offset : offset + size] = segment.reshape(cols, rows).T.reshape(-1)
        offset += size
        out[offset : offset + rows] = flat[offset : offset + rows]  # the bias is a vector
        offset += rows
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
    """The (W (out, in), b (out,)) of every layer from a vector in the shared order."""
    flat = _check(vector, shapes)
    layers = []
    offset = 0
    for rows, cols in shapes:
        weight = flat[offset : offset + rows * cols].reshape(rows, cols)
        offset += rows * cols
        layers.append((weight, flat[offset : offset + rows]))
        offset += rows
    return layers
