"""Partition kernels for the external (spilled) sort: contiguous user-index ranges of bounded size."""

from __future__ import annotations

import numpy as np

__all__ = ["user_partitions", "split_by_partition"]


def user_partitions(counts: np.ndarray, max_rows: int) -> np.ndarray:
    """Partition id (0..K-1, non-decreasing) of each user, from the users' row ``counts`` in index order.

    Consecutive users share a partition while it holds at most ``max_rows`` rows, except that a
    partition may exceed it by the rows of its first user (a user is never split). Users with no rows
    join the partition before them.

    >>> user_partitions(np.array([2, 2, 1, 5, 1]), 4)
    array([0, 0, 1, 2, 2])
    """
    if len(counts) == 0:
        return np.zeros(0, dtype=np.int64)
    if max_rows < 1:
        msg = f"max_rows must be at least 1, not {max_rows}"
        raise ValueError(msg)
    end = np.cumsum(counts, dtype=np.int64)
    bucket = np.maximum(end - 1, 0) // max_rows
    return np.unique(bucket, return_inverse=True)[1].reshape(-1).astype(np.int64)


def split_by_partition(part: np.ndarray, num_parts: int) -> tuple[np.ndarray, np.ndarray]:
    """(a stable permutation grouping rows by partition, offsets (K+1) of each partition's rows in it).

    Rows keep their order inside a partition, so the input-order tie-break survives partitioning.

    >>> split_by_partition(np.array([1, 0, 1, 0]), 3)
    (array([1, 3, 0, 2]), array([0, 2, 4, 4]))
    """
    order = np.argsort(part, kind="stable")
    offsets = np.zeros(num_parts + 1, dtype=np.int64)
    np.cumsum(np.bincount(part, minlength=num_parts), out=offsets[1:])
    return order, offsets
