"""The low-dimensional toy sets: the 1-D reflection no NODE can represent, and a linearly
separable control set that any model fits."""

from __future__ import annotations

import numpy as np

from pyanode._errors import DataError
from pyanode._validate import check_bool, check_choice, check_int, check_seed
from pyanode.data._dataset import TASKS, Dataset, binary_dataset, check_real


def reflection_1d(
    *,
    n: int = 100,
    continuous: bool = False,
    reflect: bool = True,
    noise_scale: float = 0.0,
    seed: int = 0,
) -> Dataset:
    """Regression data for g_1d(-1) = +1, g_1d(+1) = -1, or for phi(x) = -x on [-1, 1].

    Dupont et al., "Augmented Neural ODEs" (2019), §3, Prop. 1: the flow of an ODE cannot
    represent g_1d, because the trajectories from -1 to +1 and from +1 to -1 would cross. The
    survey "Overcoming Limitations of Neural ODEs", §3.1, Prop. 1, uses the continuous
    reflection phi(x) = -x, which data-controlled and adaptive-depth NODEs can learn.

    With `continuous=False`, x is -1 for the first half of the points (n // 2 of them) and +1 for
    the rest, in shuffled order, optionally jittered by Gaussian noise of standard deviation
    `noise_scale` (Dupont's code uses 1e-6); the target is g_1d of the clean point, i.e. exactly
    -1 or +1. With `continuous=True`, x ~ U[-1, 1] and the target is -x. `reflect=False` gives the
    identity target instead (g(x) = x), the control Dupont trains beside g_1d (Fig. 2c).

    **Arguments:**

    - `n`: number of points (>= 2).
    - `continuous`: draw x from U[-1, 1] instead of {-1, +1}.
    - `reflect`: target -x (True) or x (False).
    - `noise_scale`: standard deviation (>= 0) of the noise added to x in the discrete case.
    - `seed`: seed of `np.random.default_rng`.

    **Returns:**

    A `Dataset` named `"reflection-1d"`, task `"regression"`, x float32 (n, 1), y float32 (n, 1).

    **Raises:**

    - `DataError`: on n < 2, a negative `noise_scale`, or non-bool flags.
    """
    n = check_int("n", n, low=2, error=DataError)
    continuous = check_bool("continuous", continuous, error=DataError)
    reflect = check_bool("reflect", reflect, error=DataError)
    noise_scale = check_real("noise_scale", noise_scale, low=0.0)
    seed = check_seed("seed", seed, error=DataError)

    rng = np.random.default_rng(seed)
    sign = -1.0 if reflect else 1.0
    if continuous:
        x = rng.uniform(-1.0, 1.0, n)
        target = sign * x
    else:
        clean = np.where(np.arange(n) < n // 2, -1.0, 1.0)[rng.permutation(n)]
        target = sign * clean
        x = clean + noise_scale * rng.standard_normal(n) if noise_scale > 0.0 else clean
    meta = {
        "generator": "reflection_1d",
        "n": n,
        "continuous": continuous,
        "reflect": reflect,
        "noise_scale": noise_scale,
        "seed": seed,
    }
    return Dataset(
        x=x[:, None].astype(np.float32),
        y=target[:, None].astype(np.float32),
        name="reflection-1d",
        task="regression",
        meta=meta,
    )


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
    n = check_int("n", n, low=2, error=DataError)
    dim = check_int("dim", dim, low=1, error=DataError)
    margin = check_real("margin", margin, low=0.0, strict_low=True)
    if margin >= 2.0:
        raise DataError(f"margin must lie in (0, 2), got {margin}")
    task = check_choice("task", task, TASKS, error=DataError)
    seed = check_seed("seed", seed, error=DataError)

    rng = np.random.default_rng(seed)
    labels = np.where(np.arange(n) < n // 2, 0, 1).astype(np.int64)[rng.permutation(n)]
    x = rng.uniform(-1.0, 1.0, (n, dim))
    distance = rng.uniform(margin / 2.0, 1.0, n)
    x[:, 0] = np.where(labels == 1, distance, -distance)
    meta = {
        "generator": "separable",
        "n": n,
        "dim": dim,
        "margin": margin,
        "normal": [1.0] + [0.0] * (dim - 1),
        "seed": seed,
    }
    return binary_dataset(x.astype(np.float32), labels, name="separable", task=task, meta=meta)
