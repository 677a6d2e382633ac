"""Concentric spheres: the d-dimensional function g that a Neural ODE cannot represent."""

from __future__ import annotations

import numpy as np

from pyanode._errors import DataError
from pyanode.data._checks import check_choice, check_float, check_int, check_seed
from pyanode.data._dataset import TASKS, Dataset
from pyanode.data._sampling import RADIAL_LAWS, sample_in_shell


def concentric_spheres(
    *,
    dim: int = 2,
    n_inner: int = 1000,
    n_outer: int = 2000,
    r1: float = 0.5,
    r2: float = 1.0,
    r3: float = 1.5,
    task: str = "classification",
    radial: str = "uniform",
    seed: int = 0,
) -> Dataset:
    """A ball ||x|| <= r1 (label 0, g = -1) inside an annulus r2 <= ||x|| <= r3 (label 1, g = +1).

    Dupont et al., "Augmented Neural ODEs" (2019), §4 and App. E: g(x) = -1 for ||x|| <= r1 and
    g(x) = +1 for r2 <= ||x|| <= r3 cannot be represented by a NODE, since the flow would have
    to carry the inner ball through the annulus (Prop. 2). App. E.2 uses d = 1 and 2, 1000
    inner and 2000 outer points, r1 = 0.5, r2 = 1.0, r3 = 1.5, which are the defaults.

    Points are uniform in volume in each region (normalised Gaussian direction, radius from
    the inverse radial CDF); `radial="dupont"` draws the radius as Dupont et al.'s code does,
    uniform in the inner ball but sparse near the annulus' inner edge (see `sample_in_shell`).
    `dim=1` gives the 1-D version: the interval [-r1, r1] against [-r3, -r2] and [r2, r3]. The
    samples are shuffled, so inner and outer points are interleaved.

    **Arguments:**

    - `dim`: dimension d >= 1.
    - `n_inner`, `n_outer`: number of points in the ball and in the annulus (each >= 1).
    - `r1`, `r2`, `r3`: radii with 0 < r1 < r2 < r3.
    - `task`: `"classification"` (labels 0 inner, 1 outer, int64 (N,)) or `"regression"`
      (targets g = -1 inner, +1 outer, float32 (N, 1), as Dupont trains with an MSE loss).
    - `radial`: `"uniform"` (in volume) or `"dupont"` (the radius law of Dupont et al.'s code).
    - `seed`: seed of `np.random.default_rng`.

    **Returns:**

    A `Dataset` named `"concentric-spheres"` with x float32 (n_inner + n_outer, dim).

    **Raises:**

    - `DataError`: on a non-positive size or dimension, radii out of order, or an unknown task.
    """
    dim = check_int("dim", dim, minimum=1)
    n_inner = check_int("n_inner", n_inner, minimum=1)
    n_outer = check_int("n_outer", n_outer, minimum=1)
    r1 = check_float("r1", r1, positive=True)
    r2 = check_float("r2", r2, positive=True)
    r3 = check_float("r3", r3, positive=True)
    if not r1 < r2 < r3:
        raise DataError(f"radii must satisfy 0 < r1 < r2 < r3, got r1={r1}, r2={r2}, r3={r3}")
    task = check_choice("task", task, TASKS)
    radial = check_choice("radial", radial, RADIAL_LAWS)
    seed = check_seed(seed)

    rng = np.random.default_rng(seed)
    inner = sample_in_shell(rng, n_inner, dim, 0.0, r1, radial)
    outer = sample_in_shell(rng, n_outer, dim, r2, r3, radial)
    labels = np.concatenate([np.zeros(n_inner, np.int64), np.ones(n_outer, np.int64)])
    order = rng.permutation(n_inner + n_outer)
    x = np.concatenate([inner, outer])[order].astype(np.float32)
    labels = labels[order]
    y = labels if task == "classification" else (2.0 * labels - 1.0)[:, None].astype(np.float32)
    meta = {
        "generator": "concentric_spheres",
        "dim": dim,
        "n_inner": n_inner,
        "n_outer": n_outer,
        "r1": r1,
        "r2": r2,
        "r3": r3,
        "sampling": "uniform-in-volume" if radial == "uniform" else "dupont-radius",
        "seed": seed,
    }
    if task == "classification":
        meta["n_classes"] = 2
    return Dataset(x=x, y=y, name="concentric-spheres", task=task, meta=meta)
