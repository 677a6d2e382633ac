"""Uniform sampling in balls and spherical shells, shared by the sphere datasets."""

from __future__ import annotations

import numpy as np


def uniform_in_shell(
    rng: np.random.Generator, n: int, dim: int, r_lo: float, r_hi: float
) -> np.ndarray:
    """`n` points uniform in volume in the shell r_lo <= ||x|| <= r_hi of R^dim (a ball if r_lo=0).

    The direction is a normalised standard Gaussian; the radius inverts the radial CDF
    P(||x|| <= r) = (r^d - r_lo^d) / (r_hi^d - r_lo^d), so the density is uniform in volume.
    (Dupont et al.'s code draws r = r_lo + (r_hi - r_lo) u^(1/d), which is uniform only for
    r_lo = 0.) In one dimension the "shell" is the pair of intervals r_lo <= |x| <= r_hi.

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
    # r^d in units of r_hi: (r_lo / r_hi)^d <= 1 never overflows, whatever the radii and d
    inner = (r_lo / r_hi) ** dim
    radius = r_hi * (inner + u * (1.0 - inner)) ** (1.0 / dim)
    return direction / norm[:, None] * radius[:, None]
