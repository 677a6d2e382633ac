"""The `Dataset` container every generator and loader returns."""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from pyanode._errors import DataError

TASKS = ("classification", "regression")


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
