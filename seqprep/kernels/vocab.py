"""Vocabulary kernels: which distinct ids exist, in which order, and how to renumber codes."""

from __future__ import annotations

from typing import Literal

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from .arrow import from_numpy
from .sequences import code_counts

__all__ = [
    "fit_order",
    "date_order",
    "date_order_counted",
    "last_days",
    "order_counted",
    "first_positions",
    "first_seen_codes",
    "remap_table",
    "lookup",
    "cast_ids_exact",
    "reuse_table",
    "extend_table",
    "extend_table_counted",
    "counts_by_index",
    "user_item_counts",
]

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
    counts_all = code_counts(codes, len(ids))  # chunk by chunk: no int64 copy of all codes
    if order == "first-seen":
        present = first_seen_codes(codes)
        return present, counts_all[present]
    return order_counted(counts_all, ids, order)


def first_seen_codes(codes: np.ndarray) -> np.ndarray:
    """The distinct ``codes`` in order of first appearance, as int64 (pyarrow's hash ``unique``).

    >>> first_seen_codes(np.array([3, 1, 3, 0, 1], dtype=np.int32)).tolist()
    [3, 1, 0]
    """
    return pc.unique(pa.array(np.asarray(codes))).to_numpy(zero_copy_only=False).astype(np.int64)


def last_days(codes: np.ndarray, time: np.ndarray, size: int, day: int | float) -> np.ndarray:
    """The date of each code: the day (``floor(t / day)``) of its LAST row in input order (-1: absent).

    A session's date in SR-GNN's preprocessing is that of its last line in the file; for a log in
    time order it is the day of the latest interaction.

    >>> last_days(np.array([1, 0, 1]), np.array([35, 5, 12]), 3, 10).tolist()
    [0, 1, -1]
    """
    codes = np.asarray(codes)
    last = np.full(size, -1, dtype=np.int64)
    np.maximum.at(last, codes, np.arange(len(codes), dtype=np.int64))
    out = np.full(size, -1, dtype=np.int64)
    has = last >= 0
    out[has] = np.floor(np.asarray(time)[last[has]] / day).astype(np.int64)
    return out


def date_order(codes: np.ndarray, dates: np.ndarray, first: np.ndarray, size: int) -> tuple[np.ndarray, np.ndarray]:
    """Order the codes that occur in ``codes`` by ``dates[code]``, equal dates by ``first[code]``
    (e.g. the code's first row in the log). Returns ``(codes_in_order, counts_in_order)`` as
    :func:`fit_order` does. This is how SR-GNN's preprocessing orders sessions (by session date,
    ties in file order).

    >>> date_order(np.array([2, 0, 2, 1]), np.array([0, 0, 3]), np.array([1, 2, 0]), 3)
    (array([0, 1, 2]), array([1, 1, 2]))
    """
    return date_order_counted(np.bincount(np.asarray(codes), minlength=size), dates, first)


def date_order_counted(counts: np.ndarray, dates: np.ndarray, first: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """:func:`date_order` from a count table (``counts[k]`` rows of code ``k``, 0 = absent), as an
    engine that only has count tables (``--memory-limit``) calls it.

    >>> date_order_counted(np.array([1, 1, 2]), np.array([0, 0, 3]), np.array([1, 2, 0]))
    (array([0, 1, 2]), array([1, 1, 2]))
    """
    counts_all = np.asarray(counts, dtype=np.int64)
    present = np.flatnonzero(counts_all)
    chosen = present[np.lexsort((np.asarray(first)[present], np.asarray(dates)[present]))]
    return chosen, counts_all[chosen]


def first_positions(codes_in_order: np.ndarray, size: int) -> np.ndarray:
    """``first_seen`` positions for :func:`order_counted` from the codes in order of first appearance.

    Codes that never appear get the largest int64 (they are absent from every count table anyway).

    >>> first_positions(np.array([2, 0]), 3)[[2, 0]]
    array([0, 1])
    """
    pos = np.full(size, np.iinfo(np.int64).max, dtype=np.int64)
    pos[np.asarray(codes_in_order, dtype=np.int64)] = np.arange(len(codes_in_order))
    return pos


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
    by_id = pc.sort_indices(ids.take(from_numpy(present))).to_numpy()
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


#: Fewer codes than this are counted on the calling thread (a thread start costs more than it saves).
PAIR_THREAD_ROWS = 1 << 20


def user_item_counts(user: np.ndarray, n_users: int, item: np.ndarray, n_items: int, threads: int = 1) -> tuple[np.ndarray, np.ndarray]:
    """``(code_counts(user, n_users), code_counts(item, n_items))``, the two counts on two threads
    when ``threads`` > 1 and the rows are many (numpy lets go of the GIL while it counts); the
    tables are the same either way.

    >>> [c.tolist() for c in user_item_counts(np.array([1, 1, 0]), 2, np.array([0, 2, 2]), 3, threads=2)]
    [[1, 2], [1, 0, 2]]
    """
    if threads <= 1 or len(user) < PAIR_THREAD_ROWS:
        return code_counts(user, n_users), code_counts(item, n_items)
    from concurrent.futures import ThreadPoolExecutor

    with ThreadPoolExecutor(max_workers=1, thread_name_prefix="seqprep-counts") as pool:
        users = pool.submit(code_counts, user, n_users)
        items = code_counts(item, n_items)
        return users.result(), items


def remap_table(chosen: np.ndarray, size: int, start: int) -> np.ndarray:
    """A lookup table code -> new index: ``chosen[k]`` gets ``start + k``, absent codes get -1.

    >>> remap_table(np.array([2, 0]), 4, start=1)
    array([ 2, -1,  1, -1], dtype=int32)
    """
    table = np.full(size, -1, dtype=np.int32)
    table[chosen] = np.arange(start, start + len(chosen), dtype=np.int32)
    return table


#: Codes looked up at once (:func:`lookup`): the intp buffer (512 KiB) stays in the CPU cache.
_LOOKUP_STEP = 1 << 16


def lookup(table: np.ndarray, codes: np.ndarray, chunk: int = 1 << 20, *, in_place: bool = False) -> np.ndarray:
    """``table[codes]``, a chunk of codes at a time.

    The same array; numpy turns int32 ``codes`` into a full-size intp copy first, which costs more
    than the lookup itself on large inputs (and a chunked read suits memory-mapped codes). Each
    chunk's codes (at most 65,536 at a time) go through one reused intp buffer, which stays in the
    CPU cache, and ``np.take`` writes into the result: no temporary a chunk.

    ``in_place``: the result is written over ``codes`` itself, when it is writable and of the
    table's type (else a new array, as without it), for a caller that lets the codes go. A fresh
    result is memory the kernel must hand over page by page (first-touch faults: ~1.5 us a 4 KiB
    page on the benchmark machine, 0.1-0.24 s for 25M int32 indices) and holds the codes and the
    indices at once; the codes' own pages are resident already.

    >>> lookup(np.array([10, 20, 30], dtype=np.int32), np.array([2, 0, 2], dtype=np.int32)).tolist()
    [30, 10, 30]
    >>> codes = np.array([2, 0, 2], dtype=np.int32)
    >>> lookup(np.array([10, 20, 30], dtype=np.int32), codes, in_place=True) is codes, codes.tolist()
    (True, [30, 10, 30])
    """
    reuse = in_place and codes.dtype == table.dtype and codes.flags.writeable and type(codes) is np.ndarray
    out = codes if reuse else np.empty(len(codes), dtype=table.dtype)
    step = min(chunk, _LOOKUP_STEP)
    buffer = np.empty(min(step, len(codes)), dtype=np.intp)
    for a in range(0, len(codes), step):
        b = min(a + step, len(codes))
        idx = buffer[: b - a]
        idx[...] = codes[a:b]
        np.take(table, idx, out=out[a:b])
    return out


_CANONICAL_INT = r"^(0|-?[1-9][0-9]{0,17})$"  # up to 18 digits: always fits in int64


def cast_ids_exact(ids: pa.Array, typ: pa.DataType) -> tuple[pa.Array, np.ndarray]:
    """Cast distinct ids to ``typ``; return ``(cast, exact)`` where ``exact[k]`` is False (and
    ``cast[k]`` null) when ``ids[k]`` has no exact counterpart: text ``"007"``, ``"x"`` or ``"1.0"`` is
    no integer id (it would not print back the same), while every integer has exactly one text form.

    >>> cast, exact = cast_ids_exact(pa.array(["7", "007", "x", "-3"]), pa.int64())
    >>> cast.to_pylist(), exact.tolist()
    ([7, None, None, -3], [True, False, False, True])
    >>> cast_ids_exact(pa.array([5, -1]), pa.string())[0].to_pylist()
    ['5', '-1']
    """
    if ids.type == typ:
        return ids, np.ones(len(ids), dtype=bool)
    if pa.types.is_integer(typ) and (pa.types.is_string(ids.type) or pa.types.is_large_string(ids.type)):
        ok = pc.fill_null(pc.match_substring_regex(ids, _CANONICAL_INT), False)
        cast = pc.cast(pc.if_else(ok, ids, pa.scalar(None, ids.type)), typ)
        return cast, ok.to_numpy(zero_copy_only=False)
    try:
        cast = pc.cast(ids, typ, safe=False)  # 7.5 -> 7 here; the round trip below marks it inexact
        back = pc.cast(cast, ids.type)
    except (pa.ArrowInvalid, pa.ArrowNotImplementedError):
        return pa.nulls(len(ids), typ), np.zeros(len(ids), dtype=bool)
    exact = pc.fill_null(pc.equal(back, ids), False).to_numpy(zero_copy_only=False)
    return pc.if_else(pa.array(exact), cast, pa.scalar(None, typ)), exact


def reuse_table(ref_ids: pa.Array, ids: pa.Array, start: int) -> np.ndarray:
    """A lookup table code -> index in a fitted vocabulary: ``ids[k]`` found at ``ref_ids[j]`` gets
    ``start + j``, an id the vocabulary does not hold gets -1. Both arrays hold distinct ids of one type.

    >>> reuse_table(pa.array(["b", "a", "c"]), pa.array(["a", "z", "c"]), start=1)
    array([ 2, -1,  3], dtype=int32)
    """
    pos = pc.fill_null(pc.index_in(ids, value_set=ref_ids), -1).to_numpy(zero_copy_only=False)
    return np.where(pos >= 0, pos + start, -1).astype(np.int32)


def extend_table(
    table: np.ndarray, codes: np.ndarray, ids: pa.Array, order: Order, first: int
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Give every code that occurs in ``codes`` but has ``table[code] == -1`` a new index ``first``,
    ``first + 1``, ... in ``order`` (as :func:`fit_order`, among those codes only); entries already
    set never move. Returns ``(new_table, appended_codes, their_counts)``.

    >>> t = np.array([1, -1, 2, -1], dtype=np.int32)
    >>> new, added, counts = extend_table(t, np.array([3, 0, 1, 3]), pa.array([9, 8, 7, 6]), "frequency", 3)
    >>> new.tolist(), added.tolist(), counts.tolist()
    ([1, 4, 2, 3], [3, 1], [2, 1])
    """
    counts = np.bincount(codes, minlength=len(table)).astype(np.int64)
    first_seen = None
    if order == "first-seen":
        import pandas as pd  # imported lazily, as in fit_order

        first_seen = first_positions(pd.unique(codes), len(table))
    return extend_table_counted(table, counts, ids, order, first, first_seen)


def extend_table_counted(
    table: np.ndarray, counts: np.ndarray, ids: pa.Array, order: Order, first: int, first_seen: np.ndarray | None = None
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """:func:`extend_table` from count tables: ``counts[k]`` rows of code ``k`` (``first_seen`` as
    :func:`order_counted` takes it, for ``first-seen``).

    >>> t = np.array([1, -1, 2, -1], dtype=np.int32)
    >>> new, added, _ = extend_table_counted(t, np.array([1, 1, 0, 2]), pa.array([9, 8, 7, 6]), "frequency", 3)
    >>> new.tolist(), added.tolist()
    ([1, 4, 2, 3], [3, 1])
    """
    unseen = np.where(table < 0, np.asarray(counts, dtype=np.int64), 0)
    added, added_counts = order_counted(unseen, ids, order, first_seen)
    new = table.copy()
    new[added] = np.arange(first, first + len(added), dtype=np.int32)
    return new, added, added_counts


def counts_by_index(table: np.ndarray, counts: np.ndarray, size: int) -> np.ndarray:
    """Rows per new index from rows per code: ``out[table[k]] += counts[k]`` (codes with no rows or
    index -1 are left out); ``size`` indices.

    >>> counts_by_index(np.array([2, 0, 2, -1]), np.array([1, 5, 3, 9]), 3).tolist()
    [5, 0, 4]
    """
    counts = np.asarray(counts, dtype=np.int64)
    present = np.flatnonzero((counts > 0) & (table >= 0))
    out = np.zeros(size, dtype=np.int64)
    np.add.at(out, table[present], counts[present])
    return out
