"""Vocabulary kernels: which distinct ids exist, in which order, and how to renumber codes."""

from __future__ import annotations

from typing import Literal

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc

__all__ = ["fit_order", "order_from_counts", "remap_table"]

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
    first_seen = pd.unique(codes).astype(np.int64) if order == "first-seen" else None  # order of appearance
    return order_from_counts(counts_all, ids, order, first_seen)


def order_from_counts(
    counts_all: np.ndarray, ids: pa.Array, order: Order, first_seen: np.ndarray | None = None
) -> tuple[np.ndarray, np.ndarray]:
    """:func:`fit_order` from per-code counts (and, for ``first-seen``, the codes in order of appearance).

    Lets a build that sees its rows in chunks fit the same vocabulary.

    >>> order_from_counts(np.array([2, 3, 1]), pa.array(["b", "a", "c"]), "frequency")
    (array([1, 0, 2]), array([3, 2, 1]))
    """
    if order == "first-seen":
        if first_seen is None:
            msg = "first-seen order needs the codes in order of appearance"
            raise ValueError(msg)
        return first_seen, counts_all[first_seen]
    present = np.flatnonzero(counts_all)
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
