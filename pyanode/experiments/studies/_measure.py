"""What the studies measure besides NFE: wall time, memory kept for backward, errors."""

from __future__ import annotations

import statistics
import time
from collections.abc import Callable, Iterable
from typing import Any, TypeVar

import torch

T = TypeVar("T")


class SavedTensorBytes:
    """The peak of the bytes autograd holds for backward passes while the context is open.

    Every tensor saved for backward (by torch's ops, by `ctx.save_for_backward` of custom
    Functions, during a forward pass or inside a backward pass that builds graphs, as the
    adjoint's vector-Jacobian products do) goes through a pack hook. A saved storage counts from
    when it is first packed until the last graph node holding it is freed; `peak` is the largest
    total of such live storages, `live` the total now. Storages of `exclude` (parameters and
    inputs, which exist anyway) are not counted. For backprop through a solver the peak is the
    stages and activations of every accepted step; for the adjoint, the end state plus one
    step's vector-Jacobian product. It is a measure of the activations kept for backward, not of
    the process's memory.

    Arguments:
        exclude: tensors whose storage is not counted.
    """

    def __init__(self, exclude: Iterable[torch.Tensor] = ()):
        self._excluded = {_storage_key(t) for t in exclude}
        self._held: dict[tuple[int, str], list[int]] = {}  # key -> [references, bytes]
        self.live = 0
        self.peak = 0
        self._hooks = torch.autograd.graph.saved_tensors_hooks(self._pack, _unpack)

    def _pack(self, tensor: torch.Tensor) -> Any:
        key = _storage_key(tensor)
        if key in self._excluded:
            return tensor
        held = self._held.get(key)
        if held is None:
            held = self._held[key] = [0, tensor.untyped_storage().nbytes()]
            self.live += held[1]
            self.peak = max(self.peak, self.live)
        held[0] += 1
        return _Packed(tensor, key, self)

    def _release(self, key: tuple[int, str]) -> None:
        held = self._held[key]
        held[0] -= 1
        if held[0] == 0:
            self.live -= held[1]
            del self._held[key]

    def __enter__(self) -> SavedTensorBytes:
        self._hooks.__enter__()
        return self

    def __exit__(self, *exc) -> None:
        self._hooks.__exit__(*exc)


class _Packed:
    """A saved tensor as the graph holds it; tells its counter when the graph lets it go."""

    __slots__ = ("tensor", "key", "counter")

    def __init__(self, tensor: torch.Tensor, key: tuple[int, str], counter: SavedTensorBytes):
        self.tensor, self.key, self.counter = tensor, key, counter

    def __del__(self) -> None:
        self.counter._release(self.key)


def _storage_key(tensor: torch.Tensor) -> tuple[int, str]:
    return (tensor.untyped_storage().data_ptr(), str(tensor.device))


def _unpack(packed: Any) -> torch.Tensor:
    return packed.tensor if isinstance(packed, _Packed) else packed


def synchronize(device: torch.device) -> None:
    """Wait for queued GPU work, so that a timer measures it."""
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def timed(fn: Callable[[], T], repeats: int, device: torch.device) -> tuple[float, T]:
    """The median wall time of `repeats` calls of `fn` (seconds) and the last call's result."""
    times = []
    result = None
    for _ in range(repeats):
        synchronize(device)
        start = time.perf_counter()
        result = fn()
        synchronize(device)
        times.append(time.perf_counter() - start)
    return statistics.median(times), result  # type: ignore[return-value]


def relative_error(value: torch.Tensor, reference: torch.Tensor) -> float:
    """`||value - reference|| / ||reference||` (2-norms over all elements), in float64."""
    value = value.detach().to(torch.float64).cpu()
    reference = reference.detach().to(torch.float64).cpu()
    scale = torch.linalg.vector_norm(reference).item()
    diff = torch.linalg.vector_norm(value - reference).item()
    return diff / scale if scale > 0 else diff


def max_abs_error(value: torch.Tensor, reference: torch.Tensor) -> float:
    """`max |value - reference|`, in float64."""
    value = value.detach().to(torch.float64).cpu()
    return (value - reference.detach().to(torch.float64).cpu()).abs().max().item()


def per_sample_relative_errors(value: torch.Tensor, reference: torch.Tensor) -> torch.Tensor:
    """The relative error of each sample (row) of a batch, shape (B,)."""
    value = value.detach().to(torch.float64).cpu().reshape(value.shape[0], -1)
    reference = reference.detach().to(torch.float64).cpu().reshape(reference.shape[0], -1)
    scale = torch.linalg.vector_norm(reference, dim=1).clamp_min(torch.finfo(torch.float64).tiny)
    return torch.linalg.vector_norm(value - reference, dim=1) / scale
