"""The 1-D reflection: the simplest map whose trajectories would have to cross."""

from __future__ import annotations

import numpy as np

from pyanode.data._checks import check_bool, check_float, check_int, check_seed
from pyanode.data._dataset import Dataset


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
    n = check_int("n", n, minimum=2)
    continuous = check_bool("continuous", continuous)
    reflect = check_bool("reflect", reflect)
    noise_scale = check_float("noise_scale", noise_scale, nonnegative=True)
    seed = check_seed(seed)

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
