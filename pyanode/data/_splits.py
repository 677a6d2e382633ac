"""Train/test splits: a seeded (stratified) shuffle split and Dupont's slice-removed split."""

from __future__ import annotations

import math
from typing import Any

import numpy as np

from pyanode._errors import DataError
from pyanode.data._checks import check_float, check_seed
from pyanode.data._dataset import Dataset


def split(ds: Dataset, test_fraction: float = 0.2, seed: int = 0) -> tuple[Dataset, Dataset]:
    """Seeded shuffle split into (train, test), stratified by label for classification.

    For classification each class c with n_c samples gives round(test_fraction * n_c) of them to
    the test set, so the class ratios are kept; for regression round(test_fraction * N) samples
    go to the test set. Both parts come out shuffled. `meta["split"]` records the part, the
    fraction and the seed.

    **Arguments:**

    - `ds`: the dataset.
    - `test_fraction`: fraction in (0, 1) of the samples that go to the test set.
    - `seed`: seed of `np.random.default_rng`.

    **Returns:**

    `(train, test)`, two `Dataset`s with the name and task of `ds`.

    **Raises:**

    - `DataError`: on a fraction outside (0, 1), or if one part would be empty.
    """
    _check_dataset(ds)
    test_fraction = check_float("test_fraction", test_fraction)
    if not 0.0 < test_fraction < 1.0:
        raise DataError(f"test_fraction must lie in (0, 1), got {test_fraction}")
    seed = check_seed(seed)

    rng = np.random.default_rng(seed)
    n = len(ds)
    if ds.task == "classification":
        groups = [np.flatnonzero(ds.y == c) for c in np.unique(ds.y)]
    else:
        groups = [np.arange(n)]
    test_parts, train_parts = [], []
    for group in groups:
        shuffled = rng.permutation(group)
        n_test = math.floor(test_fraction * len(group) + 0.5)  # round half up, not to even
        test_parts.append(shuffled[:n_test])
        train_parts.append(shuffled[n_test:])
    test_idx = rng.permutation(np.concatenate(test_parts))
    train_idx = rng.permutation(np.concatenate(train_parts))
    if test_idx.size == 0 or train_idx.size == 0:
        raise DataError(
            f"split: test_fraction={test_fraction} of {n} samples leaves "
            f"{train_idx.size} for training and {test_idx.size} for testing; both must be >= 1"
        )
    info = {"test_fraction": test_fraction, "seed": seed}
    return (
        _part(ds, train_idx, "split", {"part": "train", **info}),
        _part(ds, test_idx, "split", {"part": "test", **info}),
    )


def slice_removed_split(
    ds: Dataset, *, angle_range: tuple[float, float] = (0.0, math.pi / 5)
) -> tuple[Dataset, Dataset]:
    """Remove an angular slice from the training set; the removed points are the validation set.

    Dupont et al., "Augmented Neural ODEs" (2019), §5.1 "Generalization": "removing all points
    whose angle is in [0, pi/5]" from the training set and validating on them measures how the
    learned flow behaves in the gap. The polar angle is atan2(x_1, x_0) of the first two
    coordinates, taken in [0, 2 pi); a point is removed when its angle lies in the closed range
    [theta0, theta1] read modulo 2 pi, so a range may wrap around 0 (e.g. (-0.3, 0.3)). The
    order of the samples is kept.

    **Arguments:**

    - `ds`: a dataset with x of shape (N, D), D >= 2.
    - `angle_range`: `(theta0, theta1)` in radians with 0 < theta1 - theta0 < 2 pi.

    **Returns:**

    `(train, validation)`: the points outside the slice and the points inside it.

    **Raises:**

    - `DataError`: if x is not (N, D >= 2), the range is empty or a full turn, or either part
      would be empty.
    """
    _check_dataset(ds)
    if ds.x.ndim != 2 or ds.x.shape[1] < 2:
        raise DataError(
            f"slice_removed_split needs x of shape (N, D) with D >= 2 to define a polar angle, "
            f"got shape {ds.x.shape}"
        )
    if not isinstance(angle_range, (tuple, list)) or len(angle_range) != 2:
        raise DataError(f"angle_range must be a pair (theta0, theta1), got {angle_range!r}")
    theta0 = check_float("angle_range[0]", angle_range[0])
    theta1 = check_float("angle_range[1]", angle_range[1])
    width = theta1 - theta0
    if not 0.0 < width < 2.0 * math.pi:
        raise DataError(
            f"angle_range must satisfy 0 < theta1 - theta0 < 2 pi, got ({theta0}, {theta1})"
        )
    x = ds.x.astype(np.float64)
    angle = np.arctan2(x[:, 1], x[:, 0])
    removed = np.mod(angle - theta0, 2.0 * math.pi) <= width
    if removed.all() or not removed.any():
        raise DataError(
            f"angle_range ({theta0}, {theta1}) removes {int(removed.sum())} of {len(ds)} samples; "
            "both the training and the validation set must be non-empty"
        )
    info = {"angle_range": [theta0, theta1]}
    return (
        _part(ds, np.flatnonzero(~removed), "slice_removed", {"part": "train", **info}),
        _part(ds, np.flatnonzero(removed), "slice_removed", {"part": "validation", **info}),
    )


def _check_dataset(ds: Any) -> None:
    if not isinstance(ds, Dataset):
        raise DataError(f"ds must be a pyanode.data.Dataset, got {type(ds).__name__}")


def _part(ds: Dataset, idx: np.ndarray, key: str, info: dict[str, Any]) -> Dataset:
    return Dataset(
        x=ds.x[idx], y=ds.y[idx], name=ds.name, task=ds.task, meta={**ds.meta, key: info}
    )
