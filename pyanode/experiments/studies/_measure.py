"""What the studies measure besides NFE: wall time, memory kept for backward, errors."""

from __future__ import annotations

import statistics
import time
from collections.abc import Callable, Iterable
from typing import TypeVar

import torch

T = TypeVar("T")


class SavedTensorBytes:
    """Counts the bytes autograd keeps for the backward pass while the context is open.

    Every tensor saved for backward (by torch's own ops, by `ctx.save_for_backward` of custom
    Functions) goes through a pack hook; this sums the sizes of the distinct storages among them,
    leaving out the storages of `exclude` (the parameters, which exist anyway). For backprop
    through a solver that is the stages and activations of every step; for the adjoint, the
    end state. It is a measure of the activations held between forward and backward, not of
    the process's peak memory.

    Arguments:
        exclude: tensors whose storage is not counted (e.g. the model's parameters).
    """

    def __init__(self, exclude: Iterable[torch.Tensor] = ()):
        self._excluded = {_storage_key(t) for t in exclude}
        self._seen: set[tuple[int, str]] = set()
        self.bytes = 0
        self._hooks = torch.autograd.graph.saved_tensors_hooks(self._pack, _unpack)

    def _pack(self, tensor: torch.Tensor) -> torch.Tensor:
        key = _storage_key(tensor)
        if key not in self._excluded and key not in self._seen:
            self._seen.add(key)
            self.bytes += tensor.untyped_storage().nbytes()
        return tensor

    def __enter__(self) -> SavedTensorBytes:
        self._hooks.__enter__()
        return self

    def __exit__(self, *exc) -> None:
        self._hooks.__exit__(*exc)


def _storage_key(tensor: torch.Tensor) -> tuple[int, str]:
    return (tensor.untyped_storage().data_ptr(), str(tensor.device))


def _unpack(tensor: torch.Tensor) -> torch.Tensor:
    return tensor


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
