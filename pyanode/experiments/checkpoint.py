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

from pyanode._errors import FolderError
from pyanode.experiments.store import atomic_write, unreadable

FORMAT = 2


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


def save_checkpoint(
    path: str | Path,
    trial: str,
    trainer_state: dict[str, Any],
    record_state: dict[str, Any] | None = None,
) -> Path:
    """Write a checkpoint of trial `trial` atomically to `path`.

    Arguments:
        path: the file, usually `<trial folder>/checkpoint.pt`.
        trial: the id of the trial it belongs to (checked on load).
        trainer_state: `Trainer.state_dict()`: weights, optimiser, epoch, batch, history and the
            partial sums of the running epoch. The global RNG states and torch's thread count
            (a resumed run is bit-identical only with the same count) are captured here.
        record_state: what the trial's recorder kept so far (iteration rows, snapshots).

    Returns:
        `path` as a `Path`.

    Raises:
        StoreError: if the disk refuses it (the previous checkpoint is kept).
    """
    payload = {
        "format": FORMAT,
        "trial_id": trial,
        "threads": torch.get_num_threads(),
        "trainer": trainer_state,
        "record": record_state or {},
        "rng": capture_rng_states(),
    }
    return atomic_write(path, lambda f: torch.save(payload, f))


def load_checkpoint(
    path: str | Path, trial: str | None = None, *, mmap: bool = False
) -> dict[str, Any]:
    """Read a checkpoint with `torch.load(weights_only=True)` onto the CPU.

    Arguments:
        path: the checkpoint file.
        trial: if given, the checkpoint must belong to the trial of this id.
        mmap: map the tensors from the file instead of reading them (to check a checkpoint
            without the cost of loading it).

    Returns:
        A dict with `format`, `trial_id`, `threads` (torch's thread count when it was written;
        absent in older checkpoints), `trainer` (for `Trainer.load_state_dict`), `record` (the
        recorder's state) and `rng` (for `restore_rng_states`).

    Raises:
        FolderError: if the file cannot be read, is not a pyanode checkpoint of a known format,
            or belongs to another trial than `trial`; the message names the file and the fix.
    """
    path = Path(path)
    fix = f"delete {path.name} to restart the trial from its beginning"
    try:
        payload = torch.load(path, map_location="cpu", weights_only=True, mmap=mmap)
    except Exception as err:  # torch raises UnpicklingError, RuntimeError, EOFError, ...
        if mmap:  # the plain load says what is wrong (or reads what mmap cannot)
            return load_checkpoint(path, trial)
        raise unreadable(path, err, fix) from None
    if not isinstance(payload, dict) or payload.get("format") != FORMAT:
        found = payload.get("format") if isinstance(payload, dict) else type(payload).__name__
        raise FolderError(
            f"checkpoint {str(path)!r} is not a pyanode checkpoint of format {FORMAT}, "
            f"got format {found!r}; {fix}"
        )
    if trial is not None and payload["trial_id"] != trial:
        raise FolderError(
            f"checkpoint {str(path)!r} belongs to another run (trial {payload['trial_id']}, not "
            f"{trial}); delete it to start this run afresh"
        )
    return payload
