"""Checkpoints of a training run: trainer position, weights, optimiser and RNG states.

A checkpoint is written atomically (temporary file, fsync, os.replace), so a run killed at any
instant leaves either the previous checkpoint or the new one. It is read back with
`torch.load(..., weights_only=True)`: only tensors and plain containers, never arbitrary pickles.

Why RNG states: pyanode's own components draw no random numbers after initialisation (shuffling
is a pure function of (seed, epoch), weights are initialised under a forked generator). A model
registered by a user may (dropout, noise injection); it then draws from the global generators of
torch, numpy and `random`. A trial therefore runs inside `rng_scope`, seeded from the trial's seed
(so the result does not depend on which worker ran which trials before), and its checkpoints hold
those generators' states, so that a resumed run draws the same numbers as one that never stopped.
"""

from __future__ import annotations

import contextlib
import random
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import torch

from pyanode._errors import SpecError
from pyanode.experiments.store import atomic_write
from pyanode.specs import RunSpec

CHECKPOINT = "checkpoint.pt"
FORMAT = 1


def capture_rng_states() -> dict[str, Any]:
    """The states of torch's CPU (and initialised CUDA) generators, numpy's legacy global one and
    Python's `random`, as tensors and plain values (loadable with `weights_only=True`)."""
    name, keys, pos, has_gauss, cached = np.random.get_state()
    version, internal, gauss_next = random.getstate()
    states: dict[str, Any] = {
        "torch": torch.get_rng_state(),
        "numpy": {
            "name": name,
            "keys": torch.from_numpy(keys.astype(np.int64)),
            "pos": int(pos),
            "has_gauss": int(has_gauss),
            "cached_gaussian": float(cached),
        },
        "python": {"version": version, "internal": list(internal), "gauss_next": gauss_next},
    }
    if torch.cuda.is_available() and torch.cuda.is_initialized():
        states["cuda"] = torch.cuda.get_rng_state_all()
    return states


def restore_rng_states(states: dict[str, Any]) -> None:
    """Set the global generators to `states` (from `capture_rng_states`)."""
    torch.set_rng_state(states["torch"])
    n = states["numpy"]
    keys = n["keys"].numpy().astype(np.uint32)
    np.random.set_state((n["name"], keys, n["pos"], n["has_gauss"], n["cached_gaussian"]))
    p = states["python"]
    random.setstate((p["version"], tuple(p["internal"]), p["gauss_next"]))
    if "cuda" in states and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(states["cuda"])


def seeded_rng_states(seed: int) -> dict[str, Any]:
    """The generator states after seeding torch, numpy and `random` with `seed`, computed without
    changing the caller's generators."""
    with rng_scope(None):
        torch.manual_seed(seed)
        np.random.seed(seed)
        random.seed(seed)
        return capture_rng_states()


@contextlib.contextmanager
def rng_scope(states: dict[str, Any] | None) -> Iterator[None]:
    """Run with the global generators set to `states` (unchanged for None), and give the caller
    its own generator states back afterwards."""
    saved = capture_rng_states()
    if states is not None:
        restore_rng_states(states)
    try:
        yield
    finally:
        restore_rng_states(saved)


def save_checkpoint(path: str | Path, spec: RunSpec, trainer_state: dict[str, Any]) -> Path:
    """Write a checkpoint of the run `spec` atomically to `path`.

    Arguments:
        path: the file, usually `<trial folder>/checkpoint.pt`.
        spec: the run it belongs to (stored as JSON, checked on load).
        trainer_state: `Trainer.state_dict()`: weights, optimiser, epoch, batch, history and the
            partial sums of the running epoch. The global RNG states are captured here.

    Returns:
        `path` as a `Path`.
    """
    payload = {
        "format": FORMAT,
        "spec": spec.to_json(),
        "trainer": trainer_state,
        "rng": capture_rng_states(),
    }
    return atomic_write(path, lambda f: torch.save(payload, f))


def load_checkpoint(path: str | Path, spec: RunSpec | None = None) -> dict[str, Any]:
    """Read a checkpoint with `torch.load(weights_only=True)` onto the CPU.

    Arguments:
        path: the checkpoint file.
        spec: if given, the checkpoint must belong to this run.

    Returns:
        A dict with `format`, `spec` (JSON text), `trainer` (for `Trainer.load_state_dict`) and
        `rng` (for `restore_rng_states`).

    Raises:
        SpecError: if the file is not a pyanode checkpoint of a known format, or belongs to
            another run than `spec`.
    """
    try:
        payload = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as err:  # torch raises UnpicklingError, RuntimeError, EOFError, ...
        raise SpecError(f"checkpoint {str(path)!r} cannot be read: {err}") from None
    if not isinstance(payload, dict) or payload.get("format") != FORMAT:
        found = payload.get("format") if isinstance(payload, dict) else type(payload).__name__
        raise SpecError(
            f"checkpoint {str(path)!r} is not a pyanode checkpoint of format {FORMAT}, "
            f"got format {found!r}"
        )
    if spec is not None and payload["spec"] != spec.to_json():
        raise SpecError(
            f"checkpoint {str(path)!r} belongs to another run (its spec differs from the one "
            "given); delete it to start this run afresh"
        )
    return payload
