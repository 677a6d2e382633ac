"""The sphere datasets: concentric spheres (Dupont et al.) and three spheres (the survey), with
the sampling of points in balls and spherical shells they share."""

from __future__ import annotations

import numpy as np

from pyanode._errors import DataError
from pyanode._validate import check_choice, check_int, check_seed
from pyanode.data._dataset import TASKS, Dataset, binary_dataset, check_real

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
    dim = check_int("dim", dim, low=1, error=DataError)
    n_inner = check_int("n_inner", n_inner, low=1, error=DataError)
    n_outer = check_int("n_outer", n_outer, low=1, error=DataError)
    r1 = check_real("r1", r1, low=0.0, strict_low=True)
    r2 = check_real("r2", r2, low=0.0, strict_low=True)
    r3 = check_real("r3", r3, low=0.0, strict_low=True)
    if not r1 < r2 < r3:
        raise DataError(f"radii must satisfy 0 < r1 < r2 < r3, got r1={r1}, r2={r2}, r3={r3}")
    task = check_choice("task", task, TASKS, error=DataError)
    radial = check_choice("radial", radial, RADIAL_LAWS, error=DataError)
    seed = check_seed("seed", seed, error=DataError)

    rng = np.random.default_rng(seed)
    inner = sample_in_shell(rng, n_inner, dim, 0.0, r1, radial)
    outer = sample_in_shell(rng, n_outer, dim, r2, r3, radial)
    labels = np.concatenate([np.zeros(n_inner, np.int64), np.ones(n_outer, np.int64)])
    order = rng.permutation(n_inner + n_outer)
    x = np.concatenate([inner, outer])[order].astype(np.float32)
    labels = labels[order]
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
    return binary_dataset(x, labels, name="concentric-spheres", task=task, meta=meta)


def three_spheres(
    *,
    n: int = 1024,
    dim: int = 2,
    disk_radius: float = 0.4,
    disk_offset: float = 0.6,
    annulus_inner: float = 1.2,
    annulus_outer: float = 1.6,
    seed: int = 0,
) -> Dataset:
    """Two disjoint disks inside an annulus: three classes no NODE can separate linearly.

    Label 0 is the disk of radius `disk_radius` centred at (-disk_offset, 0), label 1 the one
    centred at (+disk_offset, 0), label 2 the annulus annulus_inner <= ||x|| <= annulus_outer.
    "Overcoming Limitations of Neural ODEs", §4 and Fig. 1: the concentric-spheres problem of
    Dupont et al. made harder by embedding two spheres in a larger one, giving three classes
    that no homeomorphism makes linearly separable. The paper uses 1024 points (the default).
    Its exact radii are not given; these defaults leave margins of 2 (disk_offset - disk_radius)
    = 0.4 between the disks and annulus_inner - (disk_offset + disk_radius) = 0.2 between a
    disk and the annulus, so that the ~99% accuracies of its Table 1 are reachable.

    Each class holds n // 3 points, the first n % 3 classes one more; points are uniform in
    volume in each region and shuffled. `dim > 2` gives balls centred on the first axis inside
    a spherical shell.

    **Arguments:**

    - `n`: total number of points (>= 3).
    - `dim`: dimension (>= 2).
    - `disk_radius`, `disk_offset`: radius of each disk and distance of its centre from the
      origin; the disks are disjoint when disk_offset > disk_radius.
    - `annulus_inner`, `annulus_outer`: radii of the annulus, with
      disk_offset + disk_radius < annulus_inner < annulus_outer.
    - `seed`: seed of `np.random.default_rng`.

    **Returns:**

    A classification `Dataset` named `"three-spheres"`: x float32 (n, dim), y int64 in {0, 1, 2}.

    **Raises:**

    - `DataError`: on n < 3, dim < 2, or a geometry whose regions touch or overlap.
    """
    n = check_int("n", n, low=3, error=DataError)
    dim = check_int("dim", dim, low=2, error=DataError)
    disk_radius = check_real("disk_radius", disk_radius, low=0.0, strict_low=True)
    disk_offset = check_real("disk_offset", disk_offset, low=0.0, strict_low=True)
    annulus_inner = check_real("annulus_inner", annulus_inner, low=0.0, strict_low=True)
    annulus_outer = check_real("annulus_outer", annulus_outer, low=0.0, strict_low=True)
    if not disk_offset > disk_radius:
        raise DataError(
            f"the disks overlap: need disk_offset > disk_radius, got disk_offset={disk_offset}, "
            f"disk_radius={disk_radius}"
        )
    if not disk_offset + disk_radius < annulus_inner < annulus_outer:
        raise DataError(
            "need disk_offset + disk_radius < annulus_inner < annulus_outer, got "
            f"disk_offset + disk_radius = {disk_offset + disk_radius}, "
            f"annulus_inner={annulus_inner}, annulus_outer={annulus_outer}"
        )
    seed = check_seed("seed", seed, error=DataError)

    sizes = [n // 3 + (1 if c < n % 3 else 0) for c in range(3)]
    centres = np.zeros((2, dim))
    centres[:, 0] = (-disk_offset, disk_offset)
    rng = np.random.default_rng(seed)
    parts = [centres[c] + sample_in_shell(rng, sizes[c], dim, 0.0, disk_radius) for c in (0, 1)]
    parts.append(sample_in_shell(rng, sizes[2], dim, annulus_inner, annulus_outer))
    labels = np.repeat(np.arange(3, dtype=np.int64), sizes)
    order = rng.permutation(n)
    meta = {
        "generator": "three_spheres",
        "n": n,
        "dim": dim,
        "disk_radius": disk_radius,
        "disk_offset": disk_offset,
        "disk_centres": centres.tolist(),
        "annulus_inner": annulus_inner,
        "annulus_outer": annulus_outer,
        "margin_disk_disk": 2.0 * (disk_offset - disk_radius),
        "margin_disk_annulus": annulus_inner - (disk_offset + disk_radius),
        "class_sizes": sizes,
        "sampling": "uniform-in-volume",
        "n_classes": 3,
        "seed": seed,
    }
    return Dataset(
        x=np.concatenate(parts)[order].astype(np.float32),
        y=labels[order],
        name="three-spheres",
        task="classification",
        meta=meta,
    )
