"""Vocabulary kernels: which distinct ids exist, in which order, and how to renumber codes."""

from __future__ import annotations

from typing import Literal

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc

__all__ = ["fit_order", "order_counted", "remap_table"]

Order = Literal["frequency", "first-seen", "id"]


def fit_order(codes: np.ndarray, ids: pa.Array, order: Order) -> tuple[np.ndarray, np.ndarray]:
    """Order the ids that occur in ``codes``; return ``(codes_in_order, counts_in_order)``.

    ``codes`` are int32 indices into ``ids`` (the distinct original ids), one per kept interaction,
    in input order. Orders (all deterministic, none depends on hashing):

    - ``frequency``: most interactions first; equal counts by ascending original id;
    - ``first-seen``: order of first appearance in ``codes`` (input order);
    - ``id``: ascending original id (numeric for integer ids, byte-wise for text ids).

    >>> ids = pa.array(["b", "a", "c"])
    >>> codes = np.array([0, 1, 1, 2, 0, 1], dtype=np.int32)
    >>> fit_order(codes, ids, "frequency")
    (array([1, 0, 2]), array([3, 2, 1]))
    >>> fit_order(codes, ids, "id")[0], fit_order(codes, ids, "first-seen")[0]
    (array([1, 0, 2]), array([0, 1, 2]))
    """
    counts_all = np.bincount(codes, minlength=len(ids)).astype(np.int64)
    if order == "first-seen":
        present = pd.unique(codes).astype(np.int64)  # documented: in order of appearance
        return present, counts_all[present]
    return order_counted(counts_all, ids, order)


def order_counted(
    counts: np.ndarray, ids: pa.Array, order: Order, first_seen: np.ndarray | None = None
) -> tuple[np.ndarray, np.ndarray]:
    """:func:`fit_order` from count tables: ``counts[k]`` interactions of ``ids[k]`` (0 = absent).

    The form a distributed engine has after a tree reduction. For ``first-seen``, ``first_seen[k]`` is
    the input position of the first interaction of ``ids[k]`` (any integers that order like the global
    row order); the other orders need only the counts and give exactly what :func:`fit_order` gives.

    >>> ids = pa.array(["b", "a", "c"])
    >>> order_counted(np.array([2, 3, 1]), ids, "frequency")
    (array([1, 0, 2]), array([3, 2, 1]))
    >>> order_counted(np.array([2, 3, 0]), ids, "first-seen", first_seen=np.array([7, 1, 0]))[0]
    array([1, 0])
    """
    counts_all = np.asarray(counts, dtype=np.int64)
    present = np.flatnonzero(counts_all)
    if order == "first-seen":
        if first_seen is None:
            msg = "order 'first-seen' needs first_seen positions"
            raise ValueError(msg)
        chosen = present[np.argsort(np.asarray(first_seen)[present], kind="stable")]
        return chosen, counts_all[chosen]
    # rank of each present id by original value (ids are distinct, so no ties)
    by_id = pc.sort_indices(ids.take(pa.array(present))).to_numpy()
    if order == "id":
        chosen = present[by_id]
        return chosen, counts_all[chosen]
    if order == "frequency":
        id_rank = np.empty(len(present), dtype=np.int64)
        id_rank[by_id] = np.arange(len(present))
        perm = np.lexsort((id_rank, -counts_all[present]))
        chosen = present[perm]
        return chosen, counts_all[chosen]
    msg = f"unknown order {order!r}"
    raise ValueError(msg)


def remap_table(chosen: np.ndarray, size: int, start: int) -> np.ndarray:
    """A lookup table code -> new index: ``chosen[k]`` gets ``start + k``, absent codes get -1.

    >>> remap_table(np.array([2, 0]), 4, start=1)
    array([ 2, -1,  1, -1], dtype=int32)
    """
    table = np.full(size, -1, dtype=np.int32)
    table[chosen] = np.arange(start, start + len(chosen), dtype=np.int32)
    return table
