"""A linearly separable control set: any model, a NODE included, must fit it."""

from __future__ import annotations

import numpy as np

from pyanode._errors import DataError
from pyanode.data._checks import check_choice, check_float, check_int, check_seed
from pyanode.data._dataset import TASKS, Dataset


def separable(
    *,
    n: int = 1000,
    dim: int = 2,
    margin: float = 0.2,
    task: str = "classification",
    seed: int = 0,
) -> Dataset:
    """Two slabs of the cube [-1, 1]^dim separated by the hyperplane x_0 = 0 with a margin.

    Label 0 (target -1) has x_0 ~ U[-1, -margin/2], label 1 (target +1) has x_0 ~ U[margin/2, 1];
    the other coordinates are U[-1, 1]. The classes are linearly separable with a gap of
    `margin`, so even a NODE (whose flow is a homeomorphism) fits them exactly; this is the
    control set beside g(x) in Dupont et al., "Augmented Neural ODEs" (2019), §4.1, Fig. 6.
    Class 0 holds n // 2 points, class 1 the rest; the order is shuffled.

    **Arguments:**

    - `n`: number of points (>= 2).
    - `dim`: dimension (>= 1).
    - `margin`: width of the empty slab around x_0 = 0, in (0, 2).
    - `task`: `"classification"` (int64 labels 0/1) or `"regression"` (float32 targets -1/+1,
      shape (n, 1)).
    - `seed`: seed of `np.random.default_rng`.

    **Returns:**

    A `Dataset` named `"separable"` with x float32 (n, dim).

    **Raises:**

    - `DataError`: on n < 2, dim < 1, a margin outside (0, 2) or an unknown task.
    """
    n = check_int("n", n, minimum=2)
    dim = check_int("dim", dim, minimum=1)
    margin = check_float("margin", margin, positive=True)
    if margin >= 2.0:
        raise DataError(f"margin must lie in (0, 2), got {margin}")
    task = check_choice("task", task, TASKS)
    seed = check_seed(seed)

    rng = np.random.default_rng(seed)
    labels = np.where(np.arange(n) < n // 2, 0, 1).astype(np.int64)[rng.permutation(n)]
    x = rng.uniform(-1.0, 1.0, (n, dim))
    distance = rng.uniform(margin / 2.0, 1.0, n)
    x[:, 0] = np.where(labels == 1, distance, -distance)
    y = labels if task == "classification" else (2.0 * labels - 1.0)[:, None].astype(np.float32)
    meta = {
        "generator": "separable",
        "n": n,
        "dim": dim,
        "margin": margin,
        "normal": [1.0] + [0.0] * (dim - 1),
        "seed": seed,
    }
    if task == "classification":
        meta["n_classes"] = 2
    return Dataset(x=x.astype(np.float32), y=y, name="separable", task=task, meta=meta)
