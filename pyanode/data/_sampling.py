"""Random points in balls and spherical shells, shared by the sphere datasets."""

from __future__ import annotations

import numpy as np

# how the radius of a point in a shell is drawn: "uniform" in volume, or as Dupont et al.'s code
RADIAL_LAWS = ("uniform", "dupont")


def sample_in_shell(
    rng: np.random.Generator,
    n: int,
    dim: int,
    r_lo: float,
    r_hi: float,
    radial: str = "uniform",
) -> np.ndarray:
    """`n` points in the shell r_lo <= ||x|| <= r_hi of R^dim (a ball if r_lo = 0).

    The direction is a normalised standard Gaussian. The radius follows `radial`:

    - `"uniform"`: uniform in volume, by inverting the radial CDF
      P(||x|| <= r) = (r^d - r_lo^d) / (r_hi^d - r_lo^d);
    - `"dupont"`: r = r_lo + (r_hi - r_lo) u^(1/d), u uniform, as in Dupont et al.'s code
      (`random_point_in_sphere`). It is uniform in volume only for r_lo = 0; in a shell its
      radial density grows like (r - r_lo)^(d-1), so the inner edge of an annulus is sparse
      (in the 2-D annulus 1 <= r <= 1.5, 1 % of the points lie in its innermost tenth,
      r < 1.05, against 8 % uniformly).

    In one dimension the "shell" is the pair of intervals r_lo <= |x| <= r_hi.

    **Returns:**

    A float64 array of shape (n, dim).
    """
    direction = rng.standard_normal((n, dim))
    norm = np.linalg.norm(direction, axis=1)
    while np.any(norm == 0.0):  # probability zero, but a zero direction would break the radius
        zero = norm == 0.0
        direction[zero] = rng.standard_normal((int(zero.sum()), dim))
        norm = np.linalg.norm(direction, axis=1)
    u = rng.random(n)
    if radial == "dupont":
        radius = r_lo + (r_hi - r_lo) * u ** (1.0 / dim)
    else:
        # r^d in units of r_hi: (r_lo / r_hi)^d <= 1 never overflows, whatever the radii and d
        inner = (r_lo / r_hi) ** dim
        radius = r_hi * (inner + u * (1.0 - inner)) ** (1.0 / dim)
    return direction / norm[:, None] * radius[:, None]
