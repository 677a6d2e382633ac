"""The `Dataset` every generator and loader returns, and the train/test splits of one.

Also the one check that is the data's own: a real argument must fit the float32 arrays
(`check_real`); the other argument checks are `pyanode._validate`'s, raising `DataError`.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from pyanode._errors import DataError
from pyanode._validate import check_number, check_seed

TASKS = ("classification", "regression")
# the data are float32: a length or scale beyond this would make points or noise infinite
FLOAT32_MAX = float(np.finfo(np.float32).max)


@dataclass(frozen=True, eq=False, repr=False)
class Dataset:
    """Samples `x` with class labels or regression targets `y`, validated on construction.

    **Arguments:**

    - `x`: float32 array of shape (N, D) for vector data, or (N, ...) (e.g. (N, C, H, W) for
      images); N >= 1, every value finite.
    - `y`: for `task="classification"` an int64 array (N,) of labels >= 0 (and < `meta["n_classes"]`
      when the meta gives it); for `task="regression"` a float32 array (N, k) of finite targets.
    - `name`: the registry name of the data, e.g. `"concentric-spheres"`.
    - `task`: `"classification"` or `"regression"`.
    - `meta`: plain values describing how the data was made (generator arguments, geometry, seed,
      and `n_classes` for classification).

    **Raises:**

    - `DataError`: naming the field, the value or shape received and what is accepted.

    The arrays are not copied: treat them as read-only.
    """

    x: np.ndarray
    y: np.ndarray
    name: str
    task: str
    meta: dict[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        _check_x(self.x)
        _check_y(self.y, self.task, len(self.x), self.meta)
        if not isinstance(self.name, str) or not self.name:
            raise DataError(f"Dataset.name must be a non-empty str, got {self.name!r}")
        if not isinstance(self.meta, dict):
            raise DataError(f"Dataset.meta must be a dict, got {type(self.meta).__name__}")

    def __len__(self) -> int:
        return int(self.x.shape[0])

    def __repr__(self) -> str:
        return (
            f"Dataset(name={self.name!r}, task={self.task!r}, x={self.x.shape} {self.x.dtype}, "
            f"y={self.y.shape} {self.y.dtype})"
        )

    @property
    def feature_shape(self) -> tuple[int, ...]:
        """Shape of one sample, `x.shape[1:]`: `(D,)` for vector data, `(C, H, W)` for images."""
        return tuple(int(s) for s in self.x.shape[1:])

    @property
    def n_features(self) -> int:
        """Number of values in one sample, `prod(x.shape[1:])`: D for (N, D) data."""
        return math.prod(self.feature_shape)

    @property
    def n_classes(self) -> int:
        """Number of classes: `meta["n_classes"]` when given, else `max(y) + 1`.

        **Raises:**

        - `DataError`: if the task is not classification.
        """
        if self.task != "classification":
            raise DataError(
                f"n_classes is defined for task='classification' only; dataset {self.name!r} has "
                f"task={self.task!r} (use n_outputs)"
            )
        if "n_classes" in self.meta:
            return int(self.meta["n_classes"])
        return int(self.y.max()) + 1

    @property
    def n_outputs(self) -> int:
        """Width of a model's output: `n_classes` for classification, k for (N, k) targets."""
        if self.task == "classification":
            return self.n_classes
        return int(self.y.shape[1])

    def subset(self, idx: Any) -> Dataset:
        """The samples selected by `idx`, with the same name, task and meta.

        **Arguments:**

        - `idx`: integer indices in [0, N) (1-D) or a boolean mask of shape (N,).

        **Returns:**

        A new `Dataset` (the arrays are copies, as numpy's advanced indexing makes them).

        **Raises:**

        - `DataError`: if `idx` is neither, is out of range or selects no sample.
        """
        index = np.asarray(idx)
        n = len(self)
        if index.dtype == np.bool_:
            if index.shape != (n,):
                raise DataError(
                    f"subset: a boolean idx must have shape ({n},), got shape {index.shape}"
                )
        elif np.issubdtype(index.dtype, np.integer):
            if index.ndim != 1:
                raise DataError(f"subset: integer idx must be 1-D, got shape {index.shape}")
            if index.size and (index.min() < 0 or index.max() >= n):
                raise DataError(
                    f"subset: idx must lie in [0, {n}), got values in "
                    f"[{index.min()}, {index.max()}]"
                )
        else:
            raise DataError(
                f"subset: idx must be integer indices or a boolean mask, got dtype {index.dtype}"
            )
        n_selected = int(index.sum()) if index.dtype == np.bool_ else index.size
        if n_selected == 0:
            raise DataError(f"subset: idx selects no sample of dataset {self.name!r}")
        return Dataset(
            x=self.x[index], y=self.y[index], name=self.name, task=self.task, meta=dict(self.meta)
        )


def _check_x(x: Any) -> None:
    if not isinstance(x, np.ndarray):
        raise DataError(
            f"Dataset.x must be a numpy.ndarray (N, D) or (N, ...) of float32, "
            f"got {type(x).__name__}"
        )
    if x.ndim < 2:
        raise DataError(
            f"Dataset.x must have shape (N, D) or (N, ...) (ndim >= 2), got shape {x.shape}"
        )
    if x.shape[0] == 0:
        raise DataError(f"Dataset.x must hold at least one sample, got shape {x.shape}")
    if x.dtype != np.float32:
        raise DataError(f"Dataset.x must have dtype float32, got {x.dtype}")
    finite = np.isfinite(x)
    if not finite.all():
        bad = np.flatnonzero(~finite.reshape(len(x), -1).all(axis=1))
        raise DataError(
            f"Dataset.x must be finite, got NaN or inf in {bad.size} sample(s), first at "
            f"index {bad[0]}"
        )


def _check_y(y: Any, task: Any, n: int, meta: Any) -> None:
    if task not in TASKS:
        raise DataError(f"Dataset.task={task!r} is not known; accepted: {', '.join(TASKS)}")
    if not isinstance(y, np.ndarray):
        raise DataError(f"Dataset.y must be a numpy.ndarray, got {type(y).__name__}")
    if y.ndim == 0 or len(y) != n:
        raise DataError(f"Dataset.y must have len(y) == len(x) == {n}, got y of shape {y.shape}")
    if task == "classification":
        if y.ndim != 1 or y.dtype != np.int64:
            raise DataError(
                f"Dataset.y must be int64 labels of shape ({n},) for task='classification', "
                f"got shape {y.shape} and dtype {y.dtype}"
            )
        if y.min() < 0:
            raise DataError(
                f"Dataset.y must hold class labels >= 0 for task='classification', "
                f"got minimum {y.min()}"
            )
        n_classes = meta.get("n_classes") if isinstance(meta, dict) else None
        if n_classes is not None and y.max() >= n_classes:
            raise DataError(
                f"Dataset.y must hold labels < meta['n_classes'] = {n_classes}, got maximum "
                f"{y.max()}"
            )
    else:
        if y.ndim != 2 or y.dtype != np.float32:
            raise DataError(
                f"Dataset.y must be float32 targets of shape ({n}, k) for task='regression', "
                f"got shape {y.shape} and dtype {y.dtype}"
            )
        if not np.isfinite(y).all():
            raise DataError(
                f"Dataset.y must hold finite targets, got {int((~np.isfinite(y)).sum())} "
                f"NaN or inf value(s)"
            )


def check_real(
    name: str, value: Any, *, low: float | None = None, strict_low: bool = False
) -> float:
    """`value` as a finite float (>= `low`, or > `low` with `strict_low`) whose size fits the
    float32 data (|value| <= 3.4e38), or raise `DataError`."""
    value = check_number(name, value, low=low, strict_low=strict_low, error=DataError)
    if abs(value) > FLOAT32_MAX:
        raise DataError(
            f"{name}={value!r} does not fit the float32 data: use |{name}| <= {FLOAT32_MAX:.3g}"
        )
    return value


def binary_dataset(
    x: np.ndarray, labels: np.ndarray, *, name: str, task: str, meta: dict[str, Any]
) -> Dataset:
    """A two-class dataset from `labels` 0 / 1: kept as labels for classification (with
    `n_classes` = 2 in the meta), else the regression targets -1 / +1 of shape (n, 1)."""
    if task == "classification":
        return Dataset(x=x, y=labels, name=name, task=task, meta={**meta, "n_classes": 2})
    y = (2.0 * labels - 1.0)[:, None].astype(np.float32)
    return Dataset(x=x, y=y, name=name, task=task, meta=meta)


# -- splits ---------------------------------------------------------------------------------------


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
    test_fraction = check_real("test_fraction", test_fraction)
    if not 0.0 < test_fraction < 1.0:
        raise DataError(f"test_fraction must lie in (0, 1), got {test_fraction}")
    seed = check_seed("seed", seed, error=DataError)

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
    theta0 = check_real("angle_range[0]", angle_range[0])
    theta1 = check_real("angle_range[1]", angle_range[1])
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
