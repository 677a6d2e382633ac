"""Reader for the IDX format of the MNIST and Fashion-MNIST files."""

from __future__ import annotations

import gzip
import math
import os
import struct

import numpy as np

from pyanode._errors import DataError

# Third magic byte -> big-endian element type (LeCun's MNIST page, "THE IDX FILE FORMAT").
IDX_DTYPES = {
    0x08: np.dtype(">u1"),
    0x09: np.dtype(">i1"),
    0x0B: np.dtype(">i2"),
    0x0C: np.dtype(">i4"),
    0x0D: np.dtype(">f4"),
    0x0E: np.dtype(">f8"),
}


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
