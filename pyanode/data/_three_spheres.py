"""Three spheres: two disjoint disks inside an annulus, the survey's three-class toy set."""

from __future__ import annotations

import numpy as np

from pyanode._errors import DataError
from pyanode.data._checks import check_float, check_int, check_seed
from pyanode.data._dataset import Dataset
from pyanode.data._sampling import sample_in_shell


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
    n = check_int("n", n, minimum=3)
    dim = check_int("dim", dim, minimum=2)
    disk_radius = check_float("disk_radius", disk_radius, positive=True)
    disk_offset = check_float("disk_offset", disk_offset, positive=True)
    annulus_inner = check_float("annulus_inner", annulus_inner, positive=True)
    annulus_outer = check_float("annulus_outer", annulus_outer, positive=True)
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
    seed = check_seed(seed)

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
