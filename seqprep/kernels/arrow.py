"""numpy arrays as pyarrow arrays, without importing ``numpy.ma``.

``pa.array(ndarray)`` first asks whether the array is a masked one (``isinstance(values,
np.ma.MaskedArray)``), and numpy imports ``numpy.ma`` on that first look: 14-16 ms of every
process's start-up (40 interleaved pairs of ``python -c "import numpy, pyarrow, pyarrow.compute"``
with and without ``numpy.ma``: 221 against 238 ms wall), which is 4% of a 1M-row build and more of a
small one. numpy's own ``np.unique`` looks too (``np.ma.is_masked``): :func:`sorted_unique`.

:func:`from_numpy` builds the same array from the numpy array's buffer (zero-copy, as
``pa.array`` is for numbers without nulls); anything else goes to ``pa.array``.
"""

from __future__ import annotations

import numpy as np
import pyarrow as pa

__all__ = ["from_numpy", "sorted_unique"]

_TYPES = {
    np.dtype(np.int8): pa.int8(),
    np.dtype(np.int16): pa.int16(),
    np.dtype(np.int32): pa.int32(),
    np.dtype(np.int64): pa.int64(),
    np.dtype(np.uint8): pa.uint8(),
    np.dtype(np.uint16): pa.uint16(),
    np.dtype(np.uint32): pa.uint32(),
    np.dtype(np.uint64): pa.uint64(),
    np.dtype(np.float32): pa.float32(),
    np.dtype(np.float64): pa.float64(),
}


def from_numpy(values: np.ndarray, type: pa.DataType | None = None) -> pa.Array:
    """``pa.array(values, type)`` for a 1-d numpy array: the same array (NaN stays a value, not a
    null, as there). A number array of the type asked for (or of any, with none asked) is wrapped
    as it is, zero-copy when contiguous; any other array (bools, objects, another byte order, a type
    to cast to) is ``pa.array``'s.

    >>> from_numpy(np.array([3, 1, 2], dtype=np.int32)).to_pylist()
    [3, 1, 2]
    >>> from_numpy(np.arange(6, dtype=np.int64)[::2], pa.int64()).type, from_numpy(np.arange(6)[::2]).to_pylist()
    (DataType(int64), [0, 2, 4])
    >>> from_numpy(np.array([1, 2]), pa.int32()).type
    DataType(int32)
    """
    typ = _TYPES.get(values.dtype) if isinstance(values, np.ndarray) and values.ndim == 1 else None
    if typ is None or (type is not None and type != typ):
        return pa.array(values, type)
    values = np.ascontiguousarray(values)
    return pa.Array.from_buffers(typ, len(values), [None, pa.py_buffer(values)])


def sorted_unique(values: np.ndarray) -> np.ndarray:
    """``np.unique(values)`` of a 1-d number array (sorted distinct values; NaN never equals itself,
    so every NaN stays - use it for integers).

    >>> sorted_unique(np.array([3, 1, 3, 0, 1])).tolist()
    [0, 1, 3]
    """
    out = np.sort(values)
    if len(out) < 2:
        return out
    keep = np.empty(len(out), dtype=bool)
    keep[0] = True
    np.not_equal(out[1:], out[:-1], out=keep[1:])
    return out[keep]
