"""Join kernels: which row of a keyed table belongs to each index of a vocabulary, and a row of
padding in front of per-index arrays."""

from __future__ import annotations

import numpy as np

__all__ = ["pad_front", "rows_of_targets"]


def rows_of_targets(key_target: np.ndarray, key_codes: np.ndarray, size: int) -> np.ndarray:
    """For each of ``size`` targets (positions in a vocabulary), the table row whose key maps to it, else -1.

    ``key_target[k]``: the target of distinct key ``k`` (-1: none); ``key_codes[r]``: the key of row
    ``r`` (-1: missing). Keys are distinct, so a target has one row at most.

    >>> rows_of_targets(np.array([2, -1, 0]), np.array([1, 0, -1, 2]), 3)
    array([ 3, -1,  1])
    """
    target = np.append(np.asarray(key_target, dtype=np.int64), -1)[key_codes]  # a missing key (-1) has no target
    hit = np.flatnonzero(target >= 0)
    out = np.full(size, -1, dtype=np.int64)
    out[target[hit]] = hit
    return out


def pad_front(values: np.ndarray, fill: float, offsets: np.ndarray | None = None) -> tuple[np.ndarray, np.ndarray | None]:
    """Per-index values (or CSR lists with ``offsets``) with one padding row in front: ``fill`` (a
    value), or an empty list.

    >>> pad_front(np.array([5, 7], dtype=np.int32), 0)[0]
    array([0, 5, 7], dtype=int32)
    >>> pad_front(np.array([3, 4, 4]), 0, np.array([0, 2, 3]))[1]
    array([0, 0, 2, 3])
    """
    if offsets is None:
        return np.concatenate([np.array([fill], dtype=values.dtype), values]), None
    return values, np.concatenate([np.zeros(1, dtype=np.int64), np.asarray(offsets, dtype=np.int64)])
